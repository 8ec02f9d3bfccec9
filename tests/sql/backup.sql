-- Sample data and checks for tests/test_backup.py.

-- name: insert_sample_data :exec
-- A little of everything: awkward text, NULLs, microsecond timestamps,
-- bytea, jsonb, text[] with commas, quotes, newlines and unicode, identity
-- sequences moved on, and one large object.
INSERT INTO users (id, email, name, email_verified, role_id, stripe_customer_id, created_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'Ada@Example.com', 'Ada "the first", Lovelace',
        '2024-02-29 12:34:56.789012+00', (SELECT id FROM roles WHERE name = 'admin'), 'cus_1',
        '2020-01-01 00:00:00.000001+00'),
       ('00000000-0000-0000-0000-000000000002', 'bob@example.com', NULL, NULL, NULL, NULL,
        '1999-12-31 23:59:59.999999+00');
INSERT INTO accounts (user_id, type, provider, provider_account_id, access_token, expires_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'oauth', 'github', '42', 'gho_x', 1735689600);
INSERT INTO sessions (session_token_hash, user_id, expires)
VALUES (sha256('session token'::bytea), '00000000-0000-0000-0000-000000000001',
        '2030-01-01 00:00:00.5+00');
INSERT INTO verification_tokens (identifier, token_hash, expires)
VALUES ('bob@example.com', sha256('magic link'::bytea), '2030-01-02 03:04:05.000006+00');
INSERT INTO subscriptions (stripe_subscription_id, user_id, stripe_customer_id, status, price_id,
                           quantity, "interval", interval_count, current_period_start,
                           metadata, last_event_id, last_event_created)
VALUES ('sub_1', '00000000-0000-0000-0000-000000000001', 'cus_1', 'active', 'price_1', 2, 'month',
        1, '2025-01-01 00:00:00+00', '{"plan": "pro", "seats": [1, 2], "note": "a\"b"}',
        'evt_1', '2025-01-01 00:00:01.25+00');
INSERT INTO stripe_events (id, type, created, payload, outcome)
VALUES ('evt_1', 'customer.subscription.created', '2025-01-01 00:00:01.25+00',
        '{"id": "evt_1", "data": {"object": {"id": "sub_1"}}}', 'applied');
INSERT INTO roles (name, description) VALUES ('auditor', E'reads\teverything');
INSERT INTO csv_uploads (user_id, filename, status, headers, total_rows, file_size)
VALUES ('00000000-0000-0000-0000-000000000001', 'people.csv', 'completed',
        ARRAY['name', 'city', 'note'], 300, 12345),
       ('00000000-0000-0000-0000-000000000002', 'empty.csv', 'failed', '{}', 0, 0);
INSERT INTO csv_rows (upload_id, row_index, "values")
SELECT u.id, g, ARRAY['name ' || g, 'Zürich, "CH"', CASE WHEN g % 3 = 0 THEN '' ELSE E'line\nbreak ' || g END]
FROM csv_uploads u, generate_series(1, 300) AS g
WHERE u.filename = 'people.csv';
SELECT lo_from_bytea(0, '\x00ff00ff'::bytea);

-- name: table_digest :one
-- Row count and an md5 over the table's rows in a stable order ({table} is an identifier).
SELECT count(*) AS rows,
       md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '')) AS digest
FROM {table} AS t;

-- name: large_objects :one
SELECT count(*) AS objects,
       md5(coalesce(string_agg(encode(lo_get(oid), 'hex'), ',' ORDER BY oid), '')) AS digest
FROM pg_largeobject_metadata;

-- name: sequences :many
SELECT sequencename AS name, last_value FROM pg_sequences
WHERE schemaname = 'public' ORDER BY sequencename;

-- name: databases_like :many
SELECT datname AS name FROM pg_database WHERE datname LIKE %(pattern)s ORDER BY datname;

-- name: create_blocking_view :exec
-- A view the archive does not know: DROP TABLE users in a restore then fails.
CREATE VIEW user_emails AS SELECT email FROM users;

-- name: drop_csv_rows :exec
DROP TABLE csv_rows CASCADE;

-- name: create_local_table :exec
-- A table that no trampolin archive holds.
CREATE TABLE local_notes (note text);

-- name: record_future_migration :exec
-- As if a newer trampolin had applied a migration this checkout lacks.
INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc)
VALUES (repeat('f', 64), '9999_from_the_future', now() AT TIME ZONE 'utc');

-- name: edit_migration_checksum :exec
-- As if the applied file had been edited since.
UPDATE _trampolin_migration_checksums SET checksum = repeat('0', 64)
WHERE migration_id = %(migration_id)s;

-- name: forget_migration :exec
-- As if the migration had not been applied yet.
DELETE FROM _yoyo_migration WHERE migration_id = %(migration_id)s;

-- name: forget_when_applied :exec
-- A record without its time (the column allows NULL).
UPDATE _yoyo_migration SET applied_at_utc = NULL WHERE migration_id = %(migration_id)s;

-- name: set_database_timezone :exec
-- Sessions of {database} see times in New York's zone.
ALTER DATABASE {database} SET timezone TO 'America/New_York';

-- name: create_one_connection_role :exec
-- A login role that may hold one connection at a time.
CREATE ROLE {role} LOGIN CONNECTION LIMIT 1;

-- name: give_database :exec
ALTER DATABASE {database} OWNER TO {role};

-- name: take_back_owned :exec
-- Run in the role's database: what it owns goes to the caller, the database too.
REASSIGN OWNED BY {role} TO CURRENT_USER;

-- name: drop_role :exec
DROP ROLE {role};

-- name: create_notes_whose_index_fails_elsewhere :exec
-- Rows, a large object, and an index that builds here but not where it is
-- restored (its function reads a setting only this session has): the restore
-- fails after the data and the large object are in.
CREATE TABLE notes (n integer);
INSERT INTO notes SELECT generate_series(1, 10);
SELECT lo_from_bytea(0, 'a large object');
CREATE FUNCTION scaled(integer) RETURNS integer IMMUTABLE LANGUAGE sql
    AS $$ SELECT $1 * current_setting('trampolin_test.factor')::integer $$;
SET trampolin_test.factor = 2;
CREATE INDEX notes_scaled ON notes (scaled(n));

-- name: create_notes_with_a_slow_index :exec
-- An index that takes half a second to build, at the very end of a restore.
CREATE TABLE notes (n integer);
INSERT INTO notes SELECT generate_series(1, 10);
CREATE FUNCTION slowly(integer) RETURNS integer IMMUTABLE LANGUAGE sql
    AS $$ SELECT $1 FROM pg_sleep(0.05) $$;
CREATE INDEX notes_slowly ON notes (slowly(n));

-- name: create_notes_with_a_very_slow_index :exec
-- An index that takes 5 s to build: a restore of it can be stopped or killed
-- while psql waits for it.
CREATE TABLE notes (n integer);
INSERT INTO notes SELECT generate_series(1, 50);
CREATE FUNCTION slowly(integer) RETURNS integer IMMUTABLE LANGUAGE sql
    AS $$ SELECT $1 FROM pg_sleep(0.1) $$;
CREATE INDEX notes_slowly ON notes (slowly(n));

-- name: lock_table_exclusive :exec
-- Held until the transaction ends: pg_dump (ACCESS SHARE) waits for it.
LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;

-- name: lock_table_shared :exec
-- Held until the transaction ends: reads go on, a restore's DROP TABLE waits.
LOCK TABLE {table} IN ACCESS SHARE MODE;

-- name: waiting_for_a_lock :one
-- Whether a session of that application in that database waits for a lock.
SELECT count(*) > 0 AS waiting
FROM pg_stat_activity
WHERE datname = %(db)s AND application_name = %(app)s AND wait_event_type = 'Lock';

-- name: sessions_of :one
-- How many sessions have this application_name or use a database of that name.
SELECT count(*) AS sessions
FROM pg_stat_activity
WHERE application_name = %(name)s OR datname = %(name)s;

