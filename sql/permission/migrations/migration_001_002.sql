-- permission 1 -> 2 (Kinto 8.1.2): version bookkeeping for the permission backend, and the C
-- collation on the id columns so prefix LIKE queries can use their indexes.

-- Shared with the storage backend when both use one database; whichever runs first creates it.
CREATE TABLE IF NOT EXISTS metadata (
    name  VARCHAR(128) NOT NULL,
    value VARCHAR(512) NOT NULL
);

ALTER TABLE user_principals ALTER COLUMN user_id TYPE TEXT COLLATE "C";
ALTER TABLE access_control_entries ALTER COLUMN object_id TYPE TEXT COLLATE "C";

INSERT INTO metadata (name, value) VALUES ('permission_schema_version', '2');
