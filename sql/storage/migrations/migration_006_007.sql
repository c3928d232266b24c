-- storage 6 -> 7: user_id becomes parent_id and resource_name becomes collection_id
-- (objects are nested under buckets and collections).
ALTER TABLE records RENAME COLUMN resource_name TO collection_id;
ALTER TABLE records RENAME COLUMN user_id TO parent_id;
ALTER INDEX idx_records_user_id_resource_name_last_modified
    RENAME TO idx_records_parent_id_collection_id_last_modified;

ALTER TABLE deleted RENAME COLUMN resource_name TO collection_id;
ALTER TABLE deleted RENAME COLUMN user_id TO parent_id;
ALTER INDEX idx_deleted_user_id_resource_name_last_modified
    RENAME TO idx_deleted_parent_id_collection_id_last_modified;

ALTER FUNCTION resource_timestamp(VARCHAR, VARCHAR) RENAME TO collection_timestamp;

-- Latest timestamp of a collection (records or tombstones), or now when empty.
CREATE OR REPLACE FUNCTION collection_timestamp(uid VARCHAR, resource VARCHAR)
RETURNS TIMESTAMP AS $$
DECLARE
    newest_record    TIMESTAMP;
    newest_tombstone TIMESTAMP;
BEGIN
    SELECT r.last_modified INTO newest_record
      FROM records r
     WHERE r.parent_id = uid AND r.collection_id = resource
     ORDER BY r.last_modified DESC
     LIMIT 1;

    SELECT d.last_modified INTO newest_tombstone
      FROM deleted d
     WHERE d.parent_id = uid AND d.collection_id = resource
     ORDER BY d.last_modified DESC
     LIMIT 1;

    RETURN coalesce(greatest(newest_tombstone, newest_record), localtimestamp);
END;
$$ LANGUAGE plpgsql;

-- Every write gets a timestamp strictly after the collection's latest one.
CREATE OR REPLACE FUNCTION bump_timestamp() RETURNS trigger AS $$
DECLARE
    previous TIMESTAMP;
    current  TIMESTAMP;
BEGIN
    previous := collection_timestamp(NEW.parent_id, NEW.collection_id);
    current := localtimestamp;
    IF previous >= current THEN
        current := previous + INTERVAL '1 milliseconds';
    END IF;
    NEW.last_modified := current;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '7');
