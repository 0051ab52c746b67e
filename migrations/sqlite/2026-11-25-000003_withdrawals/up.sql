-- Withdrawal requests and the gate's decision on each, with every reason, the valuation used for
-- the limits (in the jurisdiction's currency), and the ledger hold that moved the funds.
CREATE TABLE withdrawals (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    jurisdiction TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    network TEXT NOT NULL,
    address TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'held', 'rejected')),
    -- JSON array of {code, message}.
    reasons TEXT NOT NULL,
    currency TEXT NOT NULL,
    -- Atoms of `currency`; NULL when the withdrawal could not be valued.
    amount_local BIGINT,
    usd_price TEXT,
    fx_rate TEXT,
    price_at TIMESTAMP,
    -- IVMS101 beneficiary data as sent (encrypted: it names a person).
    beneficiary_encrypted TEXT,
    hold_seq BIGINT,
    requested_at TIMESTAMP NOT NULL,
    requested_by TEXT NOT NULL
);
CREATE INDEX withdrawals_user_time ON withdrawals (user_id, requested_at);
