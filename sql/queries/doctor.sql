-- Read-only checks for `trampolin doctor`.

-- name: ping :one
-- The cheapest round trip.
SELECT 1 AS one;

-- name: missing_seed_roles :many
-- Seed roles that are not in the roles table.
SELECT expected.name
FROM unnest(%(names)s::text[]) AS expected(name)
WHERE NOT EXISTS (SELECT 1 FROM roles r WHERE r.name = expected.name)
ORDER BY expected.name;

-- name: roles_table_exists :one
SELECT to_regclass('roles') IS NOT NULL AS present;

-- name: statement_timeout :one
SELECT current_setting('statement_timeout') AS value;
