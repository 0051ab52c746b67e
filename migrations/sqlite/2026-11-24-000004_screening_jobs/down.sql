CREATE TABLE screening_jobs_old (
    id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    subjects BIGINT NOT NULL,
    done BIGINT NOT NULL,
    new_hits BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
INSERT INTO screening_jobs_old
SELECT id, reason, subjects, done, new_hits,
    CASE status WHEN 'queued' THEN 'failed' ELSE status END, COALESCE(started_at, created_at),
    finished_at
FROM screening_jobs;
DROP TABLE screening_jobs;
ALTER TABLE screening_jobs_old RENAME TO screening_jobs;
