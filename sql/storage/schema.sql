-- kinto-ops: PostgreSQL storage backend, full schema at version 26.
--
-- Produces the same catalog as a database created by upstream Kinto 26.x:
-- the tables objects, timestamps and metadata, the helper functions as_epoch
-- and from_epoch, and the bump_timestamp trigger. `kinto migrate` runs this
-- file, in one transaction, only on a database that has no storage tables yet.

-- Epoch milliseconds of a timestamp (the HTTP API's integer timestamps).
-- IMMUTABLE because an index is built on it.
CREATE OR REPLACE FUNCTION as_epoch(ts TIMESTAMP) RETURNS BIGINT AS $$
BEGIN
    RETURN (EXTRACT(EPOCH FROM ts) * 1000)::BIGINT;
END;
$$ LANGUAGE plpgsql IMMUTABLE;

-- The reverse: epoch milliseconds back to a timestamp (in the session zone,
-- which is why the database must run in UTC).
CREATE OR REPLACE FUNCTION from_epoch(epoch BIGINT) RETURNS TIMESTAMP AS $$
BEGIN
    RETURN TIMESTAMP WITH TIME ZONE 'epoch' + epoch * INTERVAL '1 millisecond';
END;
$$ LANGUAGE plpgsql IMMUTABLE;

-- Every stored object (buckets, collections, groups, records, accounts, history
-- entries, tombstones). Identifiers use the C collation so prefix LIKE queries
-- on parent_id can use the btree indexes.
CREATE TABLE IF NOT EXISTS objects (
    id            TEXT COLLATE "C" NOT NULL,
    parent_id     TEXT COLLATE "C" NOT NULL,
    resource_name TEXT COLLATE "C" NOT NULL,
    last_modified TIMESTAMP NOT NULL,
    data          JSONB NOT NULL DEFAULT '{}'::JSONB,
    deleted       BOOLEAN NOT NULL,
    PRIMARY KEY (id, parent_id, resource_name)
);

-- No two objects of one list share a timestamp.
CREATE UNIQUE INDEX IF NOT EXISTS idx_objects_parent_id_resource_name_last_modified
    ON objects (parent_id, resource_name, last_modified DESC);
CREATE INDEX IF NOT EXISTS idx_objects_last_modified_epoch
    ON objects (as_epoch(last_modified));
CREATE INDEX IF NOT EXISTS idx_objects_resource_name_parent_id_deleted
    ON objects (resource_name, parent_id, deleted);
-- Latest record of a collection.
CREATE INDEX IF NOT EXISTS idx_objects_parent_id_record_last_modified
    ON objects (parent_id, last_modified DESC)
    WHERE resource_name = 'record';
-- History plugin trimming.
CREATE INDEX IF NOT EXISTS idx_objects_history_userid_and_resourcename
    ON objects ((data -> 'user_id'), (data -> 'resource_name'))
    WHERE resource_name = 'history';

-- Timestamp of a list that was read while empty (so it stays stable).
CREATE TABLE IF NOT EXISTS timestamps (
    parent_id     TEXT COLLATE "C" NOT NULL,
    resource_name TEXT COLLATE "C" NOT NULL,
    last_modified TIMESTAMP NOT NULL,
    PRIMARY KEY (parent_id, resource_name)
);

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

-- Schema bookkeeping: append-only name/value rows, no key (shared with the
-- permission backend when both use one database).
CREATE TABLE IF NOT EXISTS metadata (
    name  VARCHAR(128) NOT NULL,
    value VARCHAR(512) NOT NULL
);
INSERT INTO metadata (name, value) VALUES ('created_at', NOW()::TEXT);
INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '26');
