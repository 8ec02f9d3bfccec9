DROP VIEW csv_rows_named;
DROP TRIGGER csv_uploads_delete_rows ON csv_uploads;
DROP FUNCTION csv_uploads_delete_rows();
DROP TABLE csv_rows;
DROP TABLE csv_uploads;
