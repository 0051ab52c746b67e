-- A withdrawal names its ledger hold by the hold's transaction id, chosen before the hold is
-- written, instead of by the hold's sequence number, which exists only once the hold has taken
-- the ledger's chain head. The withdrawal row can then be written before the hold, so the head
-- (which serialises every ledger writer until commit) is held for the chain appends alone.
ALTER TABLE withdrawals ADD COLUMN hold_transaction_id TEXT;
UPDATE withdrawals SET hold_transaction_id = (
    SELECT transaction_id FROM ledger_entries WHERE ledger_entries.seq = withdrawals.hold_seq
) WHERE hold_seq IS NOT NULL;
ALTER TABLE withdrawals DROP COLUMN hold_seq;
