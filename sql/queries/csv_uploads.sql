-- CSV uploads and their rows (trampolin.csv_uploads).
--
-- An import runs in two steps. First fail_abandoned (that user's dead uploads)
-- and insert_upload record the upload as 'processing' (committed at once on an
-- autocommit connection; a savepoint inside the caller's transaction). Then ONE
-- transaction (or savepoint) takes lock_upload, claim_upload, COPYs every row
-- (copy_rows) and finishes with complete_upload. A malformed file rolls that
-- back and fail_upload records why. The advisory lock is transaction-scoped (it
-- dies with the importer's transaction or session, and is safe behind PgBouncer
-- in transaction mode): fail_abandoned only fails 'processing' uploads whose
-- lock it can take, i.e. whose importer is gone.
-- Lock key: (1668511349 = 'csvu' in ASCII, the upload id's low 31 bits).

-- name: insert_upload :one
-- A new upload, already 'processing' (on an autocommit connection, committed
-- before the rows are loaded).
INSERT INTO csv_uploads (user_id, filename, status)
VALUES (%(user_id)s, %(filename)s, 'processing')
RETURNING *;

-- name: lock_upload :exec
-- Hold the upload's advisory lock until the loading transaction ends.
SELECT pg_advisory_xact_lock(1668511349, (%(upload_id)s::bigint & 2147483647)::integer);

-- name: claim_upload :one
-- One row if the upload is still 'processing' (cleanup did not fail it
-- meanwhile); the update also row-locks it for the rest of the load.
UPDATE csv_uploads SET updated_at = now()
WHERE id = %(upload_id)s AND status = 'processing'
RETURNING id;

-- name: utf8_client_encoding :exec
-- The COPY lines are sent as UTF-8 (only needed if the connection uses another encoding).
SET LOCAL client_encoding TO 'UTF8';

-- name: copy_rows :copy
-- The rows, in COPY text format: upload_id, row_index, "values" as an array literal.
COPY csv_rows (upload_id, row_index, "values") FROM STDIN;

-- name: complete_upload :one
-- Mark a loaded upload completed, with its header, row count and size.
UPDATE csv_uploads
SET status = 'completed', headers = %(headers)s, total_rows = %(total_rows)s,
    file_size = %(file_size)s, error_message = NULL
WHERE id = %(upload_id)s
RETURNING *;

-- name: fail_upload :one
-- Mark an upload failed with the reason (its rows were rolled back). Only a
-- 'processing' one: an import interrupted while its COMMIT was already done
-- stays completed, and cleanup's reason is not overwritten.
UPDATE csv_uploads
SET status = 'failed', error_message = %(error_message)s, file_size = %(file_size)s
WHERE id = %(upload_id)s AND status = 'processing'
RETURNING *;

-- name: fail_abandoned :many
-- Fail the 'processing' uploads whose importer is gone: not updated for
-- older_than seconds, not row-locked, and whose advisory lock is free; only
-- the user's (user_id) or that upload (upload_id) unless they are NULL. The
-- CTEs are materialized so the lock is only tried on those candidates. An
-- importer commits its upload, then takes the lock in its next transaction:
-- older_than must cover that instant (csv_uploads.IMPORT_START_WINDOW).
WITH candidates AS MATERIALIZED (
    SELECT id FROM csv_uploads
    WHERE status = 'processing'
      AND updated_at < now() - make_interval(secs => %(older_than)s)
      AND (%(user_id)s::uuid IS NULL OR user_id = %(user_id)s::uuid)
      AND (%(upload_id)s::bigint IS NULL OR id = %(upload_id)s::bigint)
    ORDER BY id
    FOR UPDATE SKIP LOCKED
), abandoned AS MATERIALIZED (
    SELECT id FROM candidates
    WHERE pg_try_advisory_xact_lock(1668511349, (id & 2147483647)::integer)
)
UPDATE csv_uploads u
SET status = 'failed', error_message = %(error_message)s
FROM abandoned a
WHERE u.id = a.id
RETURNING u.*;

-- name: get_upload :one
-- The upload, or no row.
SELECT * FROM csv_uploads WHERE id = %(upload_id)s;

-- name: get_upload_for_user :one
-- The upload if that user owns it, else no row.
SELECT * FROM csv_uploads WHERE id = %(upload_id)s AND user_id = %(user_id)s;

-- name: get_upload_by_legacy_id :one
-- The upload adopted from the app's "CsvUpload" with that (cuid) id, if
-- %(user_id)s is NULL or owns it; else no row (trampolin adopt prisma).
SELECT * FROM csv_uploads
WHERE legacy_id = %(legacy_id)s AND (%(user_id)s::uuid IS NULL OR user_id = %(user_id)s);

-- name: list_uploads_for_user :many
-- A user's uploads, newest first.
SELECT * FROM csv_uploads WHERE user_id = %(user_id)s ORDER BY id DESC;

-- name: rows_page :many
-- Up to row_limit rows after row_index "after", in file order (keyset on the primary key).
SELECT row_index, "values" FROM csv_rows
WHERE upload_id = %(upload_id)s AND row_index > %(after)s
ORDER BY row_index
LIMIT %(row_limit)s;

-- name: export_rows :copy
-- The rows as CSV written by the server itself: {columns} is the select list
-- v[1], ..., v[n] (one per header), so COPY quotes each field as RFC 4180
-- requires; empty strings come out as "". {delimiter} is the literal ',', ';'
-- or a tab (a COPY option cannot be a parameter). The subquery (kept apart by OFFSET 0)
-- detoasts each array once: subscripting the column directly would decompress
-- a large array once per column. Subscripts still walk the array from its start,
-- so the cost grows with the square of the width: wide uploads use export_arrays.
COPY (
    SELECT {columns}
    FROM (
        SELECT "values" || ARRAY[]::text[] AS v
        FROM csv_rows
        WHERE upload_id = %(upload_id)s
        ORDER BY row_index
        OFFSET 0
    ) AS r
) TO STDOUT (FORMAT csv, DELIMITER {delimiter});

-- name: export_arrays :copy
-- The rows' value arrays in file order, for uploads too wide for export_rows
-- (the client writes the CSV).
COPY (
    SELECT "values" FROM csv_rows
    WHERE upload_id = %(upload_id)s
    ORDER BY row_index
) TO STDOUT (FORMAT binary);

-- name: delete_upload :one
-- Delete an upload, returning it as it was; the csv_uploads_delete_rows
-- trigger deletes its rows.
DELETE FROM csv_uploads WHERE id = %(upload_id)s
RETURNING *;
