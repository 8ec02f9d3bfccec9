-- CSV uploads: TRUNCATE csv_uploads also truncates csv_rows.
--
-- csv_rows has no foreign key to csv_uploads (for load speed, see 0004), so
-- TRUNCATE ... CASCADE does not reach it, and TRUNCATE fires no row-level
-- DELETE trigger: TRUNCATE users CASCADE or TRUNCATE csv_uploads left every
-- csv_rows row behind as an orphan, and after RESTART IDENTITY the next
-- upload's rows collided with them on csv_rows_pkey. This statement-level
-- trigger runs whenever csv_uploads is truncated, directly or by a cascade.

CREATE FUNCTION csv_uploads_truncate_rows() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    TRUNCATE csv_rows;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION csv_uploads_truncate_rows() IS
    'Cascades a TRUNCATE of csv_uploads to csv_rows (csv_rows has no FK, for load speed).';

CREATE TRIGGER csv_uploads_truncate_rows AFTER TRUNCATE ON csv_uploads
    FOR EACH STATEMENT EXECUTE FUNCTION csv_uploads_truncate_rows();
