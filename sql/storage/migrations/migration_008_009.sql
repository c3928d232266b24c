-- storage 8 -> 9: from_epoch() (epoch milliseconds to timestamp); a timestamp given by the
-- client is kept, only missing ones are assigned.
CREATE OR REPLACE FUNCTION from_epoch(epoch BIGINT) RETURNS TIMESTAMP AS $$
BEGIN
    RETURN TIMESTAMP WITH TIME ZONE 'epoch' + epoch * INTERVAL '1 millisecond';
END;
$$ LANGUAGE plpgsql IMMUTABLE;

CREATE OR REPLACE FUNCTION bump_timestamp() RETURNS trigger AS $$
DECLARE
    previous TIMESTAMP;
    current  TIMESTAMP;
BEGIN
    previous := collection_timestamp(NEW.parent_id, NEW.collection_id);
    IF NEW.last_modified IS NULL THEN
        current := clock_timestamp();
        IF previous >= current THEN
            current := previous + INTERVAL '1 milliseconds';
        END IF;
        NEW.last_modified := current;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '9');
