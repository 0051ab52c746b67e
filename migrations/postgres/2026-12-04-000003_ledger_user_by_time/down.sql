CREATE INDEX ledger_entries_user ON ledger_entries (user_id, seq)
    INCLUDE (kind, occurred_at, asset, amount, fmv_usd, usd_price, price_at, reverses_seq);
CREATE INDEX ledger_entries_user_occurred ON ledger_entries (user_id, occurred_at);
DROP INDEX ledger_entries_user_time;
