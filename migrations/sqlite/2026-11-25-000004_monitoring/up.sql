-- Held-withdrawal review: the gate's decision stays as it was; `status` is where the withdrawal
-- is now (an officer releases or rejects a held one, with four eyes above the jurisdiction's
-- amount), and the ledger entries that settled or returned the funds.
ALTER TABLE withdrawals ADD COLUMN status TEXT NOT NULL DEFAULT 'approved'
    CHECK (status IN ('approved', 'held', 'release_pending', 'released', 'rejected'));
UPDATE withdrawals SET status = decision;
ALTER TABLE withdrawals ADD COLUMN first_reviewer TEXT;
ALTER TABLE withdrawals ADD COLUMN first_reviewed_at TIMESTAMP;
ALTER TABLE withdrawals ADD COLUMN reviewed_by TEXT;
ALTER TABLE withdrawals ADD COLUMN reviewed_at TIMESTAMP;
ALTER TABLE withdrawals ADD COLUMN review_reason TEXT;
ALTER TABLE withdrawals ADD COLUMN outcome_seq BIGINT;
CREATE INDEX withdrawals_status ON withdrawals (status, requested_at);
CREATE INDEX withdrawals_user_address ON withdrawals (user_id, address);

-- Cases group alerts about one user; they close with an outcome.
CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    jurisdiction TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    outcome TEXT CHECK (outcome IN ('no_action', 'user_offboarded', 'str_filed')),
    opened_by TEXT NOT NULL,
    opened_at TIMESTAMP NOT NULL,
    closed_by TEXT,
    closed_at TIMESTAMP,
    closing_reason TEXT
);
CREATE INDEX cases_status ON cases (status, opened_at);

-- An alert: a monitoring rule that fired (at withdrawal time or in the daily batch) or a
-- screening hit. `dedupe_key` makes the batch and the gate record one alert per rule version and
-- withdrawal, however often they run.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    jurisdiction TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('rule', 'screening')),
    rule_id TEXT,
    rule_version INTEGER,
    severity TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    action TEXT NOT NULL CHECK (action IN ('alert', 'hold', 'reject')),
    withdrawal_id TEXT REFERENCES withdrawals (id),
    screening_hit_id TEXT,
    message TEXT NOT NULL,
    details TEXT NOT NULL,
    detected_by TEXT NOT NULL CHECK (detected_by IN ('withdrawal', 'daily_batch', 'screening')),
    dedupe_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('open', 'in_case', 'closed')),
    case_id TEXT REFERENCES cases (id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX alerts_status ON alerts (status, created_at);
CREATE INDEX alerts_user ON alerts (user_id, created_at);
CREATE INDEX alerts_case ON alerts (case_id);

-- A case's notes and evidence files (encrypted, with the plaintext's SHA-256): the case file.
CREATE TABLE case_notes (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (id),
    kind TEXT NOT NULL CHECK (kind IN ('note', 'evidence', 'alerts_added', 'closed')),
    body TEXT NOT NULL,
    file_name TEXT,
    content_type TEXT,
    file_sha256 TEXT,
    file_encrypted BLOB,
    author TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX case_notes_case ON case_notes (case_id, created_at);

-- Each user's withdrawal addresses. A new one is usable from `usable_from` (the jurisdiction's
-- cooling-off), or from an officer's approval; removal ends it. Rows are never deleted.
CREATE TABLE withdrawal_addresses (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    network TEXT NOT NULL,
    address TEXT NOT NULL,
    label TEXT,
    added_by TEXT NOT NULL,
    added_at TIMESTAMP NOT NULL,
    usable_from TIMESTAMP NOT NULL,
    approved_by TEXT,
    approved_at TIMESTAMP,
    approval_reason TEXT,
    removed_by TEXT,
    removed_at TIMESTAMP
);
CREATE UNIQUE INDEX withdrawal_addresses_current ON withdrawal_addresses (user_id, network, address)
    WHERE removed_at IS NULL;

-- Signed webhooks to the platform, delivered from this durable outbox with retries.
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_attempt_at);

-- The case file is evidence: never changed once written.
CREATE TRIGGER case_notes_no_update BEFORE UPDATE ON case_notes
BEGIN
    SELECT RAISE(ABORT, 'case_notes are append-only: UPDATE refused');
END;
CREATE TRIGGER case_notes_no_delete BEFORE DELETE ON case_notes
BEGIN
    SELECT RAISE(ABORT, 'case_notes are append-only: DELETE refused');
END;
