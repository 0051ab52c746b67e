-- Ledger scale per asset: amounts are stored as integer atoms of 10^-scale.
CREATE TABLE assets (
    code TEXT PRIMARY KEY,
    scale INTEGER NOT NULL CHECK (scale BETWEEN 0 AND 18),
    kind TEXT NOT NULL CHECK (kind IN ('crypto', 'fiat'))
);
-- Fiat scales are the ISO 4217 minor units (JPY has none).
INSERT INTO assets (code, scale, kind) VALUES
    ('BTC', 8, 'crypto'), ('ETH', 9, 'crypto'), ('USDT', 6, 'crypto'), ('USDC', 6, 'crypto'),
    ('USD', 2, 'fiat'), ('EUR', 2, 'fiat'), ('GBP', 2, 'fiat'), ('CHF', 2, 'fiat'), ('HKD', 2, 'fiat'),
    ('SGD', 2, 'fiat'), ('CNY', 2, 'fiat'), ('JPY', 0, 'fiat'), ('KZT', 2, 'fiat'), ('AUD', 2, 'fiat'),
    ('CAD', 2, 'fiat');

-- One row per transfer: `amount` atoms move from the debit account to the credit account, so every
-- entry, and every transaction made of entries, balances by construction.
-- `user_id` and `asset` are checked by the writer in the same transaction instead of by foreign
-- keys: per-row constraint triggers cost more than the rest of a bulk insert, and users and
-- assets are never deleted.
CREATE TABLE ledger_entries (
    seq BIGINT PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    debit_account TEXT NOT NULL,
    credit_account TEXT NOT NULL,
    user_id TEXT,
    occurred_at TIMESTAMP NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    source TEXT,
    external_id TEXT,
    order_id TEXT,
    facility_id TEXT,
    valuation TEXT,
    fmv_usd TEXT,
    usd_price TEXT,
    price_at TIMESTAMP,
    reason TEXT,
    actor_id TEXT NOT NULL,
    reverses_seq BIGINT REFERENCES ledger_entries (seq),
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE UNIQUE INDEX ledger_entries_external ON ledger_entries (source, external_id);
CREATE INDEX ledger_entries_user ON ledger_entries (user_id, seq);
CREATE INDEX ledger_entries_occurred ON ledger_entries (occurred_at);

-- Derived from the entries in the same transaction, so reads need not sum millions of rows;
-- `hashgate verify` recomputes them.
CREATE TABLE balances (
    account TEXT NOT NULL,
    asset TEXT NOT NULL REFERENCES assets (code),
    atoms BIGINT NOT NULL,
    PRIMARY KEY (account, asset)
);

-- Prices and FX rates: 1 `base` = `rate` `quote` at `as_of` (BTC/USD, USD/HKD …).
CREATE TABLE rates (
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    as_of TIMESTAMP NOT NULL,
    rate TEXT NOT NULL,
    source TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (base, quote, as_of)
);

INSERT INTO chain_heads (name, seq, hash)
VALUES ('ledger', 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION hashgate_reject_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION hashgate_reject_change();
