-- Rescreens become queued background jobs: a worker claims them (a stale heartbeat lets another
-- process take over a job whose runner died), resumes after the last subject it finished, and
-- records the matcher configuration a full rescreen was made with.
ALTER TABLE screening_jobs DROP CONSTRAINT screening_jobs_status_check;
ALTER TABLE screening_jobs ADD CONSTRAINT screening_jobs_status_check
    CHECK (status IN ('queued', 'running', 'finished', 'failed'));
ALTER TABLE screening_jobs ALTER COLUMN started_at DROP NOT NULL;
ALTER TABLE screening_jobs ADD COLUMN requested_by TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE screening_jobs ALTER COLUMN requested_by DROP DEFAULT;
ALTER TABLE screening_jobs ADD COLUMN matcher_config TEXT NOT NULL DEFAULT '';
ALTER TABLE screening_jobs ALTER COLUMN matcher_config DROP DEFAULT;
ALTER TABLE screening_jobs ADD COLUMN entries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE screening_jobs ALTER COLUMN entries DROP DEFAULT;
ALTER TABLE screening_jobs ADD COLUMN last_subject_ref TEXT;
ALTER TABLE screening_jobs ADD COLUMN error TEXT;
ALTER TABLE screening_jobs ADD COLUMN created_at TIMESTAMP;
UPDATE screening_jobs SET created_at = started_at;
ALTER TABLE screening_jobs ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE screening_jobs ADD COLUMN heartbeat_at TIMESTAMP;
UPDATE screening_jobs SET heartbeat_at = COALESCE(finished_at, started_at);
CREATE INDEX screening_jobs_status ON screening_jobs (status, created_at);
