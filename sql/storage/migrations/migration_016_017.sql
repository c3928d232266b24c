-- storage 16 -> 17: the previous timestamp is the newest of records, tombstones and the stored
-- collection timestamp; the trigger no longer writes the timestamps table.
DROP TRIGGER IF EXISTS tgr_records_last_modified ON records;
DROP TRIGGER IF EXISTS tgr_deleted_last_modified ON deleted;

CREATE OR REPLACE FUNCTION bump_timestamp() RETURNS trigger AS $$
DECLARE
    previous TIMESTAMP;
    current  TIMESTAMP;
BEGIN
    SELECT MAX(candidates.last_modified) INTO previous
      FROM (
            (SELECT r.last_modified FROM records r
              WHERE r.parent_id = NEW.parent_id AND r.collection_id = NEW.collection_id
              ORDER BY r.last_modified DESC LIMIT 1)
            UNION
            (SELECT d.last_modified FROM deleted d
              WHERE d.parent_id = NEW.parent_id AND d.collection_id = NEW.collection_id
              ORDER BY d.last_modified DESC LIMIT 1)
            UNION
            (SELECT t.last_modified FROM timestamps t
              WHERE t.parent_id = NEW.parent_id AND t.collection_id = NEW.collection_id)
           ) AS candidates;

    current := clock_timestamp();
    IF previous IS NOT NULL AND previous >= current THEN
        current := previous + INTERVAL '1 milliseconds';
    END IF;

    IF NEW.last_modified IS NULL
       OR (previous IS NOT NULL AND as_epoch(NEW.last_modified) = as_epoch(previous)) THEN
        NEW.last_modified := current;
    END IF;

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tgr_records_last_modified
    BEFORE INSERT OR UPDATE OF data ON records
    FOR EACH ROW EXECUTE PROCEDURE bump_timestamp();
CREATE TRIGGER tgr_deleted_last_modified
    BEFORE INSERT ON deleted
    FOR EACH ROW EXECUTE PROCEDURE bump_timestamp();

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '17');
