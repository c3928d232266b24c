-- storage 19 -> 20: the same C collation on the timestamps table.
ALTER TABLE timestamps
    ALTER COLUMN parent_id TYPE TEXT COLLATE "C",
    ALTER COLUMN collection_id TYPE TEXT COLLATE "C";

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '20');
