-- storage 9 -> 10: collection timestamps kept in their own table, maintained by the trigger.
CREATE TABLE IF NOT EXISTS timestamps (
    parent_id     TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    last_modified TIMESTAMP NOT NULL,
    PRIMARY KEY (parent_id, collection_id)
);

-- The stored collection timestamp, created (now) on first use.
CREATE OR REPLACE FUNCTION collection_timestamp(uid VARCHAR, resource VARCHAR)
RETURNS TIMESTAMP AS $$
DECLARE
    ts TIMESTAMP;
BEGIN
    SELECT t.last_modified INTO ts
      FROM timestamps t
     WHERE t.parent_id = uid AND t.collection_id = resource;
    IF ts IS NULL THEN
        ts := clock_timestamp();
        INSERT INTO timestamps (parent_id, collection_id, last_modified) VALUES (uid, resource, ts);
    END IF;
    RETURN ts;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS tgr_records_last_modified ON records;
DROP TRIGGER IF EXISTS tgr_deleted_last_modified ON deleted;

-- Assigns a missing timestamp (after the collection's), and moves the collection timestamp
-- forward to the written object's.
CREATE OR REPLACE FUNCTION bump_timestamp() RETURNS trigger AS $$
DECLARE
    previous TIMESTAMP;
    current  TIMESTAMP;
BEGIN
    SELECT t.last_modified INTO previous
      FROM timestamps t
     WHERE t.parent_id = NEW.parent_id AND t.collection_id = NEW.collection_id;

    current := clock_timestamp();
    IF previous IS NOT NULL AND previous >= current THEN
        current := previous + INTERVAL '1 milliseconds';
    END IF;

    IF NEW.last_modified IS NULL THEN
        NEW.last_modified := current;
    ELSIF previous IS NULL OR NEW.last_modified > previous THEN
        current := NEW.last_modified;
    END IF;

    WITH moved AS (
        UPDATE timestamps SET last_modified = current
         WHERE parent_id = NEW.parent_id AND collection_id = NEW.collection_id
        RETURNING 1
    )
    INSERT INTO timestamps (parent_id, collection_id, last_modified)
    SELECT NEW.parent_id, NEW.collection_id, current
     WHERE NOT EXISTS (SELECT 1 FROM moved);

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tgr_records_last_modified
    BEFORE INSERT OR UPDATE ON records
    FOR EACH ROW EXECUTE PROCEDURE bump_timestamp();
CREATE TRIGGER tgr_deleted_last_modified
    BEFORE INSERT OR UPDATE ON deleted
    FOR EACH ROW EXECUTE PROCEDURE bump_timestamp();

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '10');
