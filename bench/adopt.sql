-- bench/adopt.py: the hand-written baseline and the scratch databases.

-- name: create_database_from :exec
CREATE DATABASE {database} TEMPLATE {template};

-- name: vacuum_analyze :exec
VACUUM (ANALYZE);

-- name: csv_row_count :one
SELECT count(*) AS n FROM "CsvRow";

-- name: empty_csv_rows :exec
-- Before the baseline, in its transaction: csv_rows as adoption found it (empty).
TRUNCATE csv_rows;

-- name: baseline_insert :execrows
-- What a DBA would write by hand to move the app's CsvRows into csv_rows (the
-- uploads already moved): each data object's values in the upload's headers
-- order, rowIndex + 1 as the row index; no checks, no renumbering.
INSERT INTO csv_rows (upload_id, row_index, "values")
SELECT u.id, r."rowIndex" + 1,
       ARRAY(SELECT coalesce(r.data ->> h.name, '')
             FROM unnest(u.headers) WITH ORDINALITY AS h (name, n) ORDER BY h.n)
FROM prisma_archive."CsvRow" AS r
JOIN csv_uploads AS u ON u.legacy_id = r."uploadId";

-- name: ping :one
SELECT 1 AS one;
