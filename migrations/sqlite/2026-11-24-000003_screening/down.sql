DROP TABLE screening_hits;
DROP TABLE screenings;
DROP TABLE list_changes;
DROP TABLE list_entries;
DROP TABLE list_versions;
