ALTER TABLE withdrawals ADD COLUMN hold_seq BIGINT;
UPDATE withdrawals SET hold_seq = (
    SELECT seq FROM ledger_entries
    WHERE ledger_entries.user_id = withdrawals.user_id
      AND ledger_entries.transaction_id = withdrawals.hold_transaction_id
) WHERE hold_transaction_id IS NOT NULL;
ALTER TABLE withdrawals DROP COLUMN hold_transaction_id;
