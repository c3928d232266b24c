-- storage 15 -> 16: collection_timestamp() moved into the application's queries.
DROP FUNCTION IF EXISTS collection_timestamp(VARCHAR, VARCHAR);

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '16');
