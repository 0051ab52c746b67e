DROP TABLE idempotency_keys;
DROP TABLE chain_heads;
DROP TABLE audit_log;
DROP FUNCTION hashgate_reject_change();
DROP TABLE api_tokens;
DROP TABLE users;
