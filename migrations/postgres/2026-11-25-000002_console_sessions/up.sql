-- Console sessions: the cookie holds a random secret, the table its SHA-256. A session lives only
-- as long as its officer token is not revoked; logging in always starts a new one.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES api_tokens (id),
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);
