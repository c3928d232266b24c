-- kinto-ops: PostgreSQL permission backend, full schema at version 2.
-- Same catalog as upstream Kinto's permission schema.

-- Which extra principals (group URIs) a user id or system.Authenticated has.
CREATE TABLE IF NOT EXISTS user_principals (
    user_id   TEXT COLLATE "C",
    principal TEXT,
    PRIMARY KEY (user_id, principal)
);

-- One row per (object URI, permission, principal).
CREATE TABLE IF NOT EXISTS access_control_entries (
    object_id  TEXT COLLATE "C",
    permission TEXT,
    principal  TEXT,
    PRIMARY KEY (object_id, permission, principal)
);
CREATE INDEX IF NOT EXISTS idx_access_control_entries_object_id
    ON access_control_entries (object_id);
CREATE INDEX IF NOT EXISTS idx_access_control_entries_permission
    ON access_control_entries (permission);
CREATE INDEX IF NOT EXISTS idx_access_control_entries_principal
    ON access_control_entries (principal);

-- The bookkeeping table the storage backend also uses; whichever backend comes
-- first creates it.
CREATE TABLE IF NOT EXISTS metadata (
    name  VARCHAR(128) NOT NULL,
    value VARCHAR(512) NOT NULL
);
INSERT INTO metadata (name, value) VALUES ('permission_schema_version', '2');
