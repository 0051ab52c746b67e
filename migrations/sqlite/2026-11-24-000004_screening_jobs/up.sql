-- Rescreens become queued background jobs: a worker claims them (a stale heartbeat lets another
-- process take over a job whose runner died), resumes after the last subject it finished, and
-- records the matcher configuration a full rescreen was made with.
CREATE TABLE screening_jobs_new (
    id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    matcher_config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'failed')),
    subjects BIGINT NOT NULL,
    entries BIGINT NOT NULL,
    done BIGINT NOT NULL,
    new_hits BIGINT NOT NULL,
    last_subject_ref TEXT,
    error TEXT,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    heartbeat_at TIMESTAMP,
    finished_at TIMESTAMP
);
INSERT INTO screening_jobs_new (id, reason, requested_by, matcher_config, status, subjects, entries,
    done, new_hits, created_at, started_at, heartbeat_at, finished_at)
SELECT id, reason, 'unknown', '', status, subjects, 0, done, new_hits, started_at, started_at,
    COALESCE(finished_at, started_at), finished_at
FROM screening_jobs;
DROP TABLE screening_jobs;
ALTER TABLE screening_jobs_new RENAME TO screening_jobs;
CREATE INDEX screening_jobs_status ON screening_jobs (status, created_at);
