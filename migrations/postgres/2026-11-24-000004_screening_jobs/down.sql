DROP INDEX screening_jobs_status;
UPDATE screening_jobs SET status = 'failed' WHERE status = 'queued';
UPDATE screening_jobs SET started_at = created_at WHERE started_at IS NULL;
ALTER TABLE screening_jobs ALTER COLUMN started_at SET NOT NULL;
ALTER TABLE screening_jobs DROP CONSTRAINT screening_jobs_status_check;
ALTER TABLE screening_jobs ADD CONSTRAINT screening_jobs_status_check
    CHECK (status IN ('running', 'finished', 'failed'));
ALTER TABLE screening_jobs DROP COLUMN requested_by, DROP COLUMN matcher_config,
    DROP COLUMN entries, DROP COLUMN last_subject_ref, DROP COLUMN error, DROP COLUMN created_at,
    DROP COLUMN heartbeat_at;
