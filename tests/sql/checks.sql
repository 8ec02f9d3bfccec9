-- Read-only checks that tests assert on.

-- name: role_names :many
SELECT name FROM roles ORDER BY name;

-- name: table_names :many
SELECT table_name AS name FROM information_schema.tables
WHERE table_schema = 'public' ORDER BY table_name;

-- name: yoyo_log_count :one
SELECT count(*) AS n FROM _yoyo_log WHERE operation = %(operation)s;

-- name: lock_table_t :exec
-- Inside the caller's open transaction: hold a lock on t until it ends.
LOCK TABLE t IN ACCESS SHARE MODE;

-- name: lock_table_a :exec
LOCK TABLE a IN ACCESS SHARE MODE;

-- name: waiting_on_lock :one
-- A session waiting for a lock on that table.
SELECT l.pid FROM pg_locks l
WHERE l.relation = to_regclass(%(table)s) AND NOT l.granted
LIMIT 1;

-- name: count_a :one
SELECT count(*) AS n FROM a;

-- name: current_setting :one
SELECT current_setting(%(name)s) AS value;

-- name: dedupe_t :exec
DELETE FROM t WHERE ctid NOT IN (SELECT min(ctid) FROM t GROUP BY name);

-- name: drop_t_name_key :exec
DROP INDEX CONCURRENTLY t_name_key;
