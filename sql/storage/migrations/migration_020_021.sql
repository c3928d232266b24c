-- storage 20 -> 21: records becomes objects and collection_id becomes resource_name (every kind
-- of object lives in one table). The trigger now fires only on inserts and on writes of data.
--
-- Beyond upstream's step, so that an upgraded database ends identical to a fresh install (and
-- because nothing older than 21 can run against the renamed table any more):
--   * the primary key is renamed records_pkey -> objects_pkey (and, on PostgreSQL 18, the NOT NULL
--     constraints get a fresh install's names);
--   * the deleted table left by step 17 -> 18 is merged once more (tombstones written by old web
--     heads after that step) and dropped;
--   * the temporary default on objects.deleted is removed.
ALTER TABLE records RENAME COLUMN collection_id TO resource_name;
ALTER TABLE records RENAME TO objects;
ALTER TABLE timestamps RENAME COLUMN collection_id TO resource_name;
ALTER INDEX idx_records_parent_id_collection_id_last_modified
    RENAME TO idx_objects_parent_id_resource_name_last_modified;
ALTER INDEX idx_records_last_modified_epoch RENAME TO idx_objects_last_modified_epoch;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint
                WHERE conname = 'records_pkey' AND conrelid = 'objects'::regclass) THEN
        ALTER TABLE objects RENAME CONSTRAINT records_pkey TO objects_pkey;
    END IF;
END
$$;

-- PostgreSQL 18 catalogues NOT NULL constraints under names derived from the table and column
-- at creation time; give them the names a fresh install has (no rows on older servers).
DO $$
DECLARE
    c RECORD;
BEGIN
    FOR c IN
        SELECT k.conname, r.relname || '_' || a.attname || '_not_null' AS wanted, r.relname
          FROM pg_constraint k
          JOIN pg_class r ON r.oid = k.conrelid
          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
         WHERE k.contype = 'n' AND k.conrelid IN ('objects'::regclass, 'timestamps'::regclass)
    LOOP
        IF c.conname <> c.wanted THEN
            EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', c.relname, c.conname, c.wanted);
        END IF;
    END LOOP;
END
$$;

DROP TRIGGER IF EXISTS tgr_records_last_modified ON objects;

DO $$
BEGIN
    IF to_regclass('deleted') IS NOT NULL THEN
        -- No trigger on objects at this point: the tombstones keep their timestamps; one that
        -- would collide with a timestamp already used in its list is not copied.
        INSERT INTO objects (id, parent_id, resource_name, data, last_modified, deleted)
        SELECT d.id, d.parent_id, d.collection_id, '{"deleted": true}'::JSONB, d.last_modified, TRUE
          FROM deleted d
         WHERE NOT EXISTS (SELECT 1 FROM objects o
                            WHERE o.parent_id = d.parent_id
                              AND o.resource_name = d.collection_id
                              AND o.last_modified = d.last_modified)
            ON CONFLICT (id, parent_id, resource_name) DO NOTHING;
        DROP TABLE deleted;
    END IF;
END
$$;

ALTER TABLE objects ALTER COLUMN deleted DROP DEFAULT;

CREATE OR REPLACE FUNCTION bump_timestamp() RETURNS trigger AS $$
DECLARE
    previous TIMESTAMP;
    current  TIMESTAMP;
BEGIN
    SELECT MAX(candidates.last_modified) INTO previous
      FROM (
            (SELECT o.last_modified FROM objects o
              WHERE o.parent_id = NEW.parent_id AND o.resource_name = NEW.resource_name
              ORDER BY o.last_modified DESC LIMIT 1)
            UNION
            (SELECT t.last_modified FROM timestamps t
              WHERE t.parent_id = NEW.parent_id AND t.resource_name = NEW.resource_name)
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

CREATE TRIGGER tgr_objects_last_modified
    BEFORE INSERT OR UPDATE OF data ON objects
    FOR EACH ROW EXECUTE PROCEDURE bump_timestamp();

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '21');
