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
CREATE TABLE screenings (
    id TEXT PRIMARY KEY,
    subject_kind TEXT NOT NULL,
    subject_ref TEXT,
    query TEXT NOT NULL,
    threshold TEXT NOT NULL,
    hit_count BIGINT NOT NULL,
    screened_at TIMESTAMP NOT NULL,
    screened_by TEXT NOT NULL
);
CREATE INDEX screenings_subject ON screenings (subject_ref, screened_at);

CREATE TABLE screening_hits (
    id TEXT PRIMARY KEY,
    screening_id TEXT NOT NULL REFERENCES screenings (id),
    source TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    entry_version TEXT NOT NULL,
    score TEXT NOT NULL,
    explanation TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'confirmed', 'dismissed'))
);
CREATE INDEX screening_hits_screening ON screening_hits (screening_id);
