DROP TRIGGER csv_uploads_truncate_rows ON csv_uploads;
DROP FUNCTION csv_uploads_truncate_rows();
