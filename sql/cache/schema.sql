-- kinto-ops: PostgreSQL cache backend. The cache has no version number: it is
-- installed when no table named cache exists. Every statement is idempotent.

CREATE TABLE IF NOT EXISTS cache (
    key   VARCHAR(256) PRIMARY KEY,
    value TEXT NOT NULL,
    ttl   TIMESTAMP DEFAULT NULL
);
CREATE INDEX IF NOT EXISTS idx_cache_ttl ON cache (ttl);

-- Expiry timestamp from a number of seconds (NULL means no expiry).
CREATE OR REPLACE FUNCTION sec2ttl(seconds FLOAT) RETURNS TIMESTAMP AS $$
BEGIN
    IF seconds IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN now() + (seconds || ' SECOND')::INTERVAL;
END;
$$ LANGUAGE plpgsql;
