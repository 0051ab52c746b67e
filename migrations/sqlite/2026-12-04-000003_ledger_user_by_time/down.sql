CREATE INDEX ledger_entries_user ON ledger_entries (user_id, seq);
DROP INDEX ledger_entries_user_time;
