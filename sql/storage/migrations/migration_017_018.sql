-- storage 17 -> 18: tombstones live in records (deleted = TRUE). Existing tombstones are copied
-- in; the old deleted table is left in place for web heads still running the previous version
-- (step 20 -> 21 removes it, once nothing can use it any more).
ALTER TABLE records ADD COLUMN deleted BOOLEAN;
UPDATE records SET deleted = FALSE;
ALTER TABLE records ALTER COLUMN deleted SET NOT NULL;
-- Writers of version 17 do not know the column: keep a default until step 20 -> 21.
ALTER TABLE records ALTER COLUMN deleted SET DEFAULT FALSE;

-- This step runs inside kinto migrate's transaction: lock both tables while merging.
LOCK TABLE records IN ACCESS EXCLUSIVE MODE;
LOCK TABLE deleted IN ACCESS EXCLUSIVE MODE;

INSERT INTO records (id, parent_id, collection_id, data, last_modified, deleted)
SELECT d.id, d.parent_id, d.collection_id, '{"deleted": true}'::JSONB, d.last_modified, TRUE
  FROM deleted d
    -- A record and its tombstone may both exist (Kinto bug #1375): the record wins.
    ON CONFLICT (id, parent_id, collection_id) DO NOTHING;

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '18');
