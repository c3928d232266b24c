-- storage 7 -> 8: timestamps from clock_timestamp() (the wall clock, not the start of the
-- transaction). The triggers are removed at this version; version 10 brings them back.
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

    RETURN coalesce(greatest(newest_tombstone, newest_record), clock_timestamp());
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS tgr_records_last_modified ON records;
DROP TRIGGER IF EXISTS tgr_deleted_last_modified ON deleted;

CREATE OR REPLACE FUNCTION bump_timestamp() RETURNS trigger AS $$
DECLARE
    previous TIMESTAMP;
    current  TIMESTAMP;
BEGIN
    previous := collection_timestamp(NEW.parent_id, NEW.collection_id);
    current := clock_timestamp();
    IF previous >= current THEN
        current := previous + INTERVAL '1 milliseconds';
    END IF;
    NEW.last_modified := current;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '8');
