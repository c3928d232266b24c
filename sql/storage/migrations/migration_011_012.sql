-- storage 11 -> 12: a tombstone whose object exists again is obsolete; remove those.
DELETE FROM deleted d
 USING records r
 WHERE d.id = r.id
   AND d.parent_id = r.parent_id
   AND d.collection_id = r.collection_id;

INSERT INTO metadata (name, value) VALUES ('storage_schema_version', '12');
