-- A user's entries by receipt time, then ledger order: the order a user's ledger is listed in,
-- so a page reads only its own rows. Replaces `(user_id, seq)`, whose other readers (a tax year,
-- a balance before an entry) take all of a user's entries either way.
CREATE INDEX ledger_entries_user_time ON ledger_entries (user_id, occurred_at, seq);
DROP INDEX ledger_entries_user;
