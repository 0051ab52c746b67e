-- KYC: applications with their encrypted personal data and documents, the per-user KYC profile
-- (approved tier, risk, next review), and the e-mail outbox.
CREATE TABLE kyc_applications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    jurisdiction TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('onboarding', 'periodic_review', 'document_renewal')),
    target_tier INTEGER NOT NULL CHECK (target_tier BETWEEN 1 AND 3),
    status TEXT NOT NULL
        CHECK (status IN ('submitted', 'info_requested', 'approval_pending', 'approved', 'rejected')),
    -- JSON of the personal data, AES-256-GCM, bound to the column and row.
    personal_data_encrypted TEXT NOT NULL,
    pep_declared BOOLEAN NOT NULL,
    -- JSON array of the screenings made for this application.
    screening_ids TEXT NOT NULL,
    risk_level TEXT NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    risk_factors TEXT NOT NULL,
    priority INTEGER NOT NULL,
    submitted_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP NOT NULL,
    submitted_by TEXT NOT NULL,
    based_on TEXT REFERENCES kyc_applications (id),
    assignee_id TEXT,
    assignee_name TEXT,
    claim_expires_at TIMESTAMP,
    first_approver_id TEXT,
    first_approver_name TEXT,
    first_approved_at TIMESTAMP,
    second_approver_id TEXT,
    second_approver_name TEXT,
    -- JSON array of what the user was asked for.
    requested_items TEXT,
    decision_code TEXT,
    decision_text TEXT,
    decided_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    -- Four eyes: the confirming officer is never the first approver.
    CONSTRAINT kyc_applications_four_eyes
        CHECK (second_approver_id IS NULL OR (first_approver_id IS NOT NULL AND second_approver_id <> first_approver_id))
);
CREATE INDEX kyc_applications_queue ON kyc_applications (status, priority, due_at, id);
CREATE INDEX kyc_applications_user ON kyc_applications (user_id, submitted_at);
CREATE INDEX kyc_applications_jurisdiction ON kyc_applications (jurisdiction, status, priority, due_at);

CREATE TABLE kyc_documents (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES kyc_applications (id),
    kind TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    -- SHA-256 of the plaintext file, as the applicant sent it.
    sha256 TEXT NOT NULL,
    -- nonce ‖ AES-256-GCM ciphertext, bound to the document id.
    content_encrypted BLOB NOT NULL,
    uploaded_at TIMESTAMP NOT NULL
);
CREATE INDEX kyc_documents_application ON kyc_documents (application_id);

CREATE TABLE kyc_profiles (
    user_id TEXT PRIMARY KEY REFERENCES users (id),
    jurisdiction TEXT NOT NULL,
    approved_tier INTEGER NOT NULL CHECK (approved_tier BETWEEN 0 AND 3),
    approved_application_id TEXT NOT NULL REFERENCES kyc_applications (id),
    risk_level TEXT NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    pep BOOLEAN NOT NULL,
    approved_at TIMESTAMP NOT NULL,
    next_review_at TIMESTAMP NOT NULL,
    review_lapsed_at TIMESTAMP,
    document_expires_on DATE,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX kyc_profiles_next_review ON kyc_profiles (next_review_at);
CREATE INDEX kyc_profiles_document_expiry ON kyc_profiles (document_expires_on);

CREATE TABLE email_outbox (
    id TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    language TEXT NOT NULL,
    recipient_encrypted TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_encrypted TEXT NOT NULL,
    related_type TEXT NOT NULL,
    related_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX email_outbox_due ON email_outbox (status, next_attempt_at);

-- The scheduler's record of its daily runs: one row per job and local day, so two instances
-- never run the same day twice.
CREATE TABLE scheduled_runs (
    job TEXT NOT NULL,
    run_date DATE NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    summary TEXT,
    PRIMARY KEY (job, run_date)
);

-- Documents are evidence: never changed once stored.
CREATE TRIGGER kyc_documents_no_update BEFORE UPDATE ON kyc_documents
BEGIN
    SELECT RAISE(ABORT, 'kyc_documents are append-only: UPDATE refused');
END;
CREATE TRIGGER kyc_documents_no_delete BEFORE DELETE ON kyc_documents
BEGIN
    SELECT RAISE(ABORT, 'kyc_documents are append-only: DELETE refused');
END;
