-- A user's entries by time, for the withdrawal gate's history (the payouts a user received in
-- the monitoring look-back). With only the user index and the `occurred_at` index, PostgreSQL
-- intersected the two whenever its statistics predated the latest payouts (as they do between
-- autovacuum's analyses of a growing ledger): the `occurred_at` side then read every user's
-- payouts of the look-back, 200,000 index entries and 22-32 ms a decision with 200,000 payouts in
-- the last two days, and 56 decisions/s at 10,000,000 entries. One index holding both conditions
-- is the cheapest plan under any statistics. PostgreSQL only: SQLite's planner takes the user
-- index for the equality (537 decisions/s on the same data).
CREATE INDEX ledger_entries_user_occurred ON ledger_entries (user_id, occurred_at);
