-- storage 18 -> 19: ids in the C collation, so prefix LIKE queries (delete_all) use the indexes.
ALTER TABLE records
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN parent_id TYPE TEXT COLLATE "C",
    ALTER COLUMN collection_id TYPE TEXT COLLATE "C";

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '19');
