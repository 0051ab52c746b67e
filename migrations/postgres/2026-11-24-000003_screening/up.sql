-- Every load of a list is a new version with its checksum and its diff against the previous one.
CREATE TABLE list_versions (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    version BIGINT NOT NULL,
    checksum TEXT NOT NULL,
    entries BIGINT NOT NULL,
    added BIGINT NOT NULL,
    changed BIGINT NOT NULL,
    removed BIGINT NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    loaded_by TEXT NOT NULL,
    UNIQUE (source, version)
);

-- One row per version of an entry: `removed_in` is set when a later load changes or drops it,
-- so the active list is the rows without it, and any past version can be rebuilt.
CREATE TABLE list_entries (
    source TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    first_version BIGINT NOT NULL,
    removed_in BIGINT,
    content_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (source, entry_id, first_version)
);
CREATE INDEX list_entries_active ON list_entries (source, removed_in);

CREATE TABLE list_changes (
    source TEXT NOT NULL,
    version BIGINT NOT NULL,
    entry_id TEXT NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('added', 'changed', 'removed')),
    PRIMARY KEY (source, version, entry_id)
);

-- A screening as asked (the query holds personal data, so it is encrypted) and its hits.
-- `trigger` is `request` for an API call, `rescreen:…` for ongoing monitoring.
CREATE TABLE screenings (
    id TEXT PRIMARY KEY,
    subject_kind TEXT NOT NULL,
    subject_ref TEXT,
    jurisdiction TEXT,
    query TEXT NOT NULL,
    threshold TEXT NOT NULL,
    four_eyes_score TEXT NOT NULL,
    hit_count BIGINT NOT NULL,
    trigger TEXT NOT NULL,
    screened_at TIMESTAMP NOT NULL,
    screened_by TEXT NOT NULL
);
CREATE INDEX screenings_subject ON screenings (subject_ref, screened_at);

-- `suppressed_by` names the earlier hit whose dismissal covers this one (same subject, entry and
-- entry version), so a rescreen does not raise it again.
CREATE TABLE screening_hits (
    id TEXT PRIMARY KEY,
    screening_id TEXT NOT NULL REFERENCES screenings (id),
    source TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    entry_version TEXT NOT NULL,
    score TEXT NOT NULL,
    explanation TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'confirmed', 'dismissal_pending', 'dismissed')),
    suppressed_by TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX screening_hits_screening ON screening_hits (screening_id);
CREATE INDEX screening_hits_status ON screening_hits (status, created_at);

-- Every review action on a hit, with who, when and why.
CREATE TABLE hit_reviews (
    id TEXT PRIMARY KEY,
    hit_id TEXT NOT NULL REFERENCES screening_hits (id),
    action TEXT NOT NULL CHECK (action IN ('confirm', 'dismiss', 'propose_dismissal', 'approve_dismissal', 'reject_dismissal')),
    reason TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX hit_reviews_hit ON hit_reviews (hit_id, at);

-- A dismissal holds for this subject, list entry and entry version only.
CREATE TABLE hit_dismissals (
    subject_ref TEXT NOT NULL,
    source TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    entry_version TEXT NOT NULL,
    hit_id TEXT NOT NULL REFERENCES screening_hits (id),
    dismissed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subject_ref, source, entry_id, entry_version)
);

-- The latest screened details of every subject, for ongoing monitoring (encrypted).
CREATE TABLE screening_subjects (
    subject_ref TEXT PRIMARY KEY,
    subject_kind TEXT NOT NULL,
    jurisdiction TEXT,
    query TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Rescreening runs, with their progress.
CREATE TABLE screening_jobs (
    id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    subjects BIGINT NOT NULL,
    done BIGINT NOT NULL,
    new_hits BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
