DELETE FROM chain_heads WHERE name = 'ledger';
DROP TABLE rates;
DROP TABLE balances;
DROP TABLE ledger_entries;
DROP TABLE assets;
