-- storage 3 -> 4: ids become free text (no more server-side UUIDs); the uuid-ossp extension
-- is no longer needed.
ALTER TABLE records
    ALTER COLUMN id DROP DEFAULT,
    ALTER COLUMN id SET DATA TYPE TEXT,
    ALTER COLUMN user_id SET DATA TYPE TEXT,
    ALTER COLUMN resource_name SET DATA TYPE TEXT;

ALTER TABLE deleted
    ALTER COLUMN id DROP DEFAULT,
    ALTER COLUMN id SET DATA TYPE TEXT,
    ALTER COLUMN user_id SET DATA TYPE TEXT,
    ALTER COLUMN resource_name SET DATA TYPE TEXT;

DROP EXTENSION IF EXISTS "uuid-ossp";

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '4');
