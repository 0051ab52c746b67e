-- The platform's report of what happened on chain to an approved or released withdrawal: broadcast
-- with its transaction hash, or failed. One report per withdrawal; the ledger entry it made.
CREATE TABLE withdrawal_settlements (
    withdrawal_id TEXT PRIMARY KEY REFERENCES withdrawals (id),
    outcome TEXT NOT NULL CHECK (outcome IN ('broadcast', 'failed')),
    tx_hash TEXT,
    failure_reason TEXT,
    ledger_seq BIGINT,
    reported_by TEXT NOT NULL,
    reported_at TIMESTAMP NOT NULL
);
