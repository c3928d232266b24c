-- storage 25 -> 26: the trigger orders by the raw last_modified column instead of
-- as_epoch(last_modified), so the composite (parent_id, resource_name, last_modified DESC)
-- index serves the lookup. The epoch expression index stays: list queries still select it.
DROP TRIGGER IF EXISTS tgr_objects_last_modified ON objects;

-- Assigns last_modified on insert and on updates of data:
--   previous = newest timestamp of the list (objects incl. tombstones, or the
--              timestamps row), in epoch ms;
--   current  = clock in epoch ms, or previous + 1 when the clock is not ahead;
--   a missing value, or one equal to previous, becomes current; any other
--   given value is kept as is.
CREATE OR REPLACE FUNCTION bump_timestamp() RETURNS trigger AS $$
DECLARE
    previous BIGINT;
    current  BIGINT;
BEGIN
    SELECT as_epoch(MAX(candidates.last_modified)) INTO previous
      FROM (
            (SELECT o.last_modified
               FROM objects o
              WHERE o.parent_id = NEW.parent_id
                AND o.resource_name = NEW.resource_name
              ORDER BY o.last_modified DESC
              LIMIT 1)
            UNION
            (SELECT t.last_modified
               FROM timestamps t
              WHERE t.parent_id = NEW.parent_id
                AND t.resource_name = NEW.resource_name)
           ) AS candidates;

    current := as_epoch(clock_timestamp()::TIMESTAMP);
    IF previous IS NOT NULL AND previous >= current THEN
        current := previous + 1;
    END IF;

    IF NEW.last_modified IS NULL
       OR (previous IS NOT NULL AND as_epoch(NEW.last_modified) = previous) THEN
        NEW.last_modified := from_epoch(current);
    END IF;

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS tgr_objects_last_modified ON objects;
CREATE TRIGGER tgr_objects_last_modified
    BEFORE INSERT OR UPDATE OF data ON objects
    FOR EACH ROW EXECUTE PROCEDURE bump_timestamp();

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '26');
