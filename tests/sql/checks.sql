-- Read-only checks that tests assert on.

-- name: role_names :many
SELECT name FROM roles ORDER BY name;

-- name: table_names :many
SELECT table_name AS name FROM information_schema.tables
WHERE table_schema = 'public' ORDER BY table_name;
