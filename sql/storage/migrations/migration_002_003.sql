-- storage 2 -> 3: timestamps unique per (user, resource) instead of per object, through
-- descending indexes that also serve "latest timestamp" lookups.
ALTER TABLE records DROP CONSTRAINT IF EXISTS records_id_user_id_resource_name_last_modified_key CASCADE;
CREATE UNIQUE INDEX idx_records_user_id_resource_name_last_modified
    ON records (user_id, resource_name, last_modified DESC);

ALTER TABLE deleted DROP CONSTRAINT IF EXISTS deleted_id_user_id_resource_name_last_modified_key CASCADE;
CREATE UNIQUE INDEX idx_deleted_user_id_resource_name_last_modified
    ON deleted (user_id, resource_name, last_modified DESC);

-- Latest timestamp of a resource list (records or tombstones), or now when empty.
CREATE OR REPLACE FUNCTION resource_timestamp(uid VARCHAR, resource VARCHAR)
RETURNS TIMESTAMP AS $$
DECLARE
    newest_record    TIMESTAMP;
    newest_tombstone TIMESTAMP;
BEGIN
    SELECT r.last_modified INTO newest_record
      FROM records r
     WHERE r.user_id = uid AND r.resource_name = resource
     ORDER BY r.last_modified DESC
     LIMIT 1;

    SELECT d.last_modified INTO newest_tombstone
      FROM deleted d
     WHERE d.user_id = uid AND d.resource_name = resource
     ORDER BY d.last_modified DESC
     LIMIT 1;

    RETURN coalesce(greatest(newest_tombstone, newest_record), localtimestamp);
END;
$$ LANGUAGE plpgsql;

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '3');
