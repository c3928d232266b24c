-- storage 14 -> 15: collection timestamps maintained with INSERT … ON CONFLICT (PostgreSQL 9.5+).
CREATE OR REPLACE FUNCTION collection_timestamp(uid VARCHAR, resource VARCHAR)
RETURNS TIMESTAMP AS $$
DECLARE
    ts TIMESTAMP;
BEGIN
    WITH created AS (
        INSERT INTO timestamps (parent_id, collection_id, last_modified)
        VALUES (uid, resource, clock_timestamp())
        ON CONFLICT (parent_id, collection_id) DO NOTHING
        RETURNING last_modified
    ),
    found AS (
        SELECT last_modified FROM created
        UNION
        SELECT t.last_modified FROM timestamps t WHERE t.parent_id = uid AND t.collection_id = resource
    )
    SELECT last_modified INTO ts FROM found;
    RETURN ts;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS tgr_records_last_modified ON records;
DROP TRIGGER IF EXISTS tgr_deleted_last_modified ON deleted;

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

    IF NEW.last_modified IS NULL
       OR (previous IS NOT NULL AND as_epoch(NEW.last_modified) = as_epoch(previous)) THEN
        NEW.last_modified := current;
    ELSIF previous IS NULL OR NEW.last_modified > previous THEN
        current := NEW.last_modified;
    END IF;

    INSERT INTO timestamps (parent_id, collection_id, last_modified)
    VALUES (NEW.parent_id, NEW.collection_id, current)
    ON CONFLICT (parent_id, collection_id) DO UPDATE SET last_modified = current;

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tgr_records_last_modified
    BEFORE INSERT OR UPDATE OF data ON records
    FOR EACH ROW EXECUTE PROCEDURE bump_timestamp();
CREATE TRIGGER tgr_deleted_last_modified
    BEFORE INSERT ON deleted
    FOR EACH ROW EXECUTE PROCEDURE bump_timestamp();

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '15');
