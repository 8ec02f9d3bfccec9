ALTER TABLE csv_uploads DROP COLUMN legacy_id;
ALTER TABLE users DROP COLUMN legacy_id;
DROP FUNCTION legacy_uuid(text);
