-- Checks and setups for tests/test_csv_uploads.py.

-- name: count_rows :one
SELECT count(*) AS n FROM csv_rows WHERE upload_id = %(upload_id)s;

-- name: null_values :one
-- Rows of the upload holding a NULL element (there must be none).
SELECT count(*) AS n FROM csv_rows
WHERE upload_id = %(upload_id)s AND array_position("values", NULL) IS NOT NULL;

-- name: named_row :one
SELECT data FROM csv_rows_named WHERE upload_id = %(upload_id)s AND row_index = %(row_index)s;

-- name: insert_processing_upload :one
INSERT INTO csv_uploads (user_id, filename, status)
VALUES (%(user_id)s, 'stale.csv', 'processing')
RETURNING id;

-- name: processing_uploads :many
SELECT id FROM csv_uploads WHERE user_id = %(user_id)s AND status = 'processing';

-- name: hold_upload_lock :exec
-- Take (or wait for) an upload's advisory lock, as a live importer holds it.
SELECT pg_advisory_xact_lock(1668511349, (%(upload_id)s::bigint & 2147483647)::integer);

-- name: lock_timeout :exec
SELECT set_config('lock_timeout', '60s', true);

-- name: delete_user :execrows
DELETE FROM users WHERE id = %(user_id)s;

-- name: ping :one
-- Proves the connection still works (and opens a transaction if none is).
SELECT 1 AS one;

-- name: latin1_client_encoding :exec
SET client_encoding TO 'LATIN1';

-- name: insert_stale_upload :one
-- A 'processing' upload last updated an hour ago, as a dead importer leaves it.
INSERT INTO csv_uploads (user_id, filename, status, updated_at)
VALUES (%(user_id)s, 'stale.csv', 'processing', now() - interval '1 hour')
RETURNING id;

-- name: all_rows :one
SELECT count(*) AS n FROM csv_rows;

-- name: truncate_users :exec
TRUNCATE users CASCADE;

-- name: truncate_uploads :exec
TRUNCATE csv_uploads RESTART IDENTITY CASCADE;

-- name: upload_lock_free :one
-- Whether an upload's advisory lock is free right now (taken and released at
-- the end of the caller's transaction: run it inside one and roll back).
SELECT pg_try_advisory_xact_lock(1668511349, (%(upload_id)s::bigint & 2147483647)::integer)
    AS free;

-- name: upload_age_at_least :one
-- Whether the upload was last updated at least that many seconds ago.
SELECT updated_at <= now() - make_interval(secs => %(seconds)s) AS old
FROM csv_uploads WHERE id = %(upload_id)s;

-- name: upload_count :one
SELECT count(*) AS n FROM csv_uploads WHERE user_id = %(user_id)s;
