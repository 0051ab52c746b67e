-- Generated reports: each stored once, never changed. A report is a set of files (the document,
-- its JSON, the canonical data export), each with its SHA-256 and the platform's Ed25519
-- signature of its bytes.
CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    -- `sandbox`: a periodic report; `str`: a suspicious transaction report on a case;
    -- `ledger_integrity`: the ledger's hash chain verified, with totals (for auditors);
    -- `kyc_history` and `withdrawal_trace`: the audit trail of one application or withdrawal.
    kind TEXT NOT NULL CHECK (kind IN ('sandbox', 'str', 'ledger_integrity', 'kyc_history',
        'withdrawal_trace')),
    -- The jurisdiction whose regulator (or FIU) receives it; none for platform-wide evidence.
    jurisdiction TEXT,
    -- A period (2026-Q3), the case of an STR, or the ledger entries covered.
    period_label TEXT NOT NULL,
    -- The period's (or the transactions window's) bounds in UTC, [start, end).
    period_start TIMESTAMP NOT NULL,
    period_end TIMESTAMP NOT NULL,
    language TEXT NOT NULL,
    title TEXT NOT NULL,
    -- The SHA-256 of the canonical data export, printed in the report.
    data_sha256 TEXT NOT NULL,
    -- The signing key's id (see /.well-known/hashgate-signing-key).
    key_id TEXT NOT NULL,
    generated_by TEXT NOT NULL,
    generated_at TIMESTAMP NOT NULL,
    CHECK (period_end > period_start)
);
CREATE INDEX reports_jurisdiction ON reports (jurisdiction, kind, generated_at);

CREATE TABLE report_files (
    report_id TEXT NOT NULL REFERENCES reports (id),
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    -- Encrypted at rest (AES-256-GCM, the personal-data key): an STR names its subject.
    content BLOB NOT NULL,
    -- Of the plaintext: what a recipient hashes.
    sha256 TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (report_id, name)
);
CREATE INDEX report_files_sha256 ON report_files (sha256);

CREATE TRIGGER reports_no_update BEFORE UPDATE ON reports
BEGIN
    SELECT RAISE(ABORT, 'reports is append-only: UPDATE refused');
END;
CREATE TRIGGER reports_no_delete BEFORE DELETE ON reports
BEGIN
    SELECT RAISE(ABORT, 'reports is append-only: DELETE refused');
END;
CREATE TRIGGER report_files_no_update BEFORE UPDATE ON report_files
BEGIN
    SELECT RAISE(ABORT, 'report_files is append-only: UPDATE refused');
END;
CREATE TRIGGER report_files_no_delete BEFORE DELETE ON report_files
BEGIN
    SELECT RAISE(ABORT, 'report_files is append-only: DELETE refused');
END;

-- Periodic reports made by themselves once each period closes, and who hears of them.
CREATE TABLE report_schedules (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('sandbox')),
    jurisdiction TEXT NOT NULL,
    -- The recipients' e-mail addresses, encrypted (a JSON list).
    recipients_encrypted TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    disabled_by TEXT,
    disabled_at TIMESTAMP
);

-- One report per schedule and period: of several instances racing, exactly one inserts it.
CREATE TABLE scheduled_reports (
    schedule_id TEXT NOT NULL REFERENCES report_schedules (id),
    period_label TEXT NOT NULL,
    report_id TEXT NOT NULL REFERENCES reports (id),
    PRIMARY KEY (schedule_id, period_label)
);
