-- One index for every per-user read of the ledger, keyed by the user and the receipt time and
-- carrying the columns those reads take, instead of two (`(user_id, seq)` covering and
-- `(user_id, occurred_at)`): every index on the ledger is written at every payout, and the second
-- one cost PostgreSQL ingest a quarter of its rate (56-60k -> 43-45k payouts/s).
-- - The withdrawal gate's history (a user's payouts of the last hours or days) is a range of it,
--   so no plan reads more than those rows, whatever the statistics say; with only a user index
--   and the `occurred_at` index, stale statistics made PostgreSQL intersect the two and read
--   every user's recent payouts.
-- - A tax year is a range of it too; its rows are sorted by `seq` in memory (a few hundred).
-- - A user's latest entries are read from it and sorted: a user's hundreds or thousands of
--   entries lie on a few index pages.
-- `IF NOT EXISTS`: on a large ledger, build it beforehand with CREATE INDEX CONCURRENTLY (see
-- docs/operations.md), and this migration only drops the two it replaces.
CREATE INDEX IF NOT EXISTS ledger_entries_user_time ON ledger_entries (user_id, occurred_at)
    INCLUDE (seq, kind, asset, amount, fmv_usd, usd_price, price_at, reverses_seq);
DROP INDEX ledger_entries_user_occurred;
DROP INDEX ledger_entries_user;
