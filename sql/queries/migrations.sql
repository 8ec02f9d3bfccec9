-- Bookkeeping for `trampolin migrate`.
--
-- The applied-migration record is yoyo's own (_yoyo_migration, _yoyo_log,
-- _yoyo_version at schema version 2), so `yoyo list` reads the truth too.
-- trampolin adds _trampolin_migration_checksums: the sha256 of each applied
-- file, to refuse deploys whose applied migrations were edited.
-- Every record is written in the same transaction as the migration itself.

-- name: try_lock :one
-- Take the session-level migration lock if it is free. An advisory lock dies
-- with its session, so a killed migrator never blocks the next deploy.
SELECT pg_try_advisory_lock(%(key)s) AS locked;

-- name: watch_client_connection :one
-- Make the server check every interval that the migrator is still connected,
-- so that a killed deploy's transaction aborts (and its lock is released)
-- instead of running on to the end of a long statement. PostgreSQL 14+.
SELECT set_config('client_connection_check_interval', %(interval)s, false) AS value
WHERE current_setting('server_version_num')::integer >= 140000;

-- name: unlock :one
SELECT pg_advisory_unlock(%(key)s) AS unlocked;

-- name: bookkeeping_exists :one
-- Which bookkeeping tables exist yet: a fresh database has neither, one
-- migrated by plain yoyo has no checksums.
SELECT to_regclass('_yoyo_migration') IS NOT NULL AS migrations,
       to_regclass('_trampolin_migration_checksums') IS NOT NULL AS checksums;

-- name: create_bookkeeping :exec
-- Idempotent; run under the migration lock.
CREATE TABLE IF NOT EXISTS _yoyo_migration (
    migration_hash varchar(64) PRIMARY KEY,
    migration_id   varchar(255),
    applied_at_utc timestamp
);
CREATE TABLE IF NOT EXISTS _yoyo_log (
    id             varchar(36) PRIMARY KEY,
    migration_hash varchar(64),
    migration_id   varchar(255),
    operation      varchar(10),
    username       varchar(255),
    hostname       varchar(255),
    comment        varchar(255),
    created_at_utc timestamp
);
CREATE TABLE IF NOT EXISTS _yoyo_version (
    version          integer PRIMARY KEY,
    installed_at_utc timestamp
);
INSERT INTO _yoyo_version (version, installed_at_utc)
VALUES (2, now() AT TIME ZONE 'utc')
ON CONFLICT (version) DO NOTHING;
CREATE TABLE IF NOT EXISTS _trampolin_migration_checksums (
    migration_id text PRIMARY KEY,
    checksum     text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE _trampolin_migration_checksums IS
    'sha256 of each applied migration file; trampolin migrate refuses edited files.';

-- name: applied_migrations :many
-- Applied migrations in the order they were applied, with their checksums
-- (NULL for a migration applied by plain yoyo, adopted on the next migrate).
SELECT m.migration_id,
       m.applied_at_utc AT TIME ZONE 'utc' AS applied_at,
       c.checksum
FROM _yoyo_migration m
LEFT JOIN _trampolin_migration_checksums c USING (migration_id)
ORDER BY m.applied_at_utc, m.migration_id;

-- name: applied_migrations_without_checksums :many
-- As applied_migrations, for a database that plain yoyo migrated.
SELECT migration_id,
       applied_at_utc AT TIME ZONE 'utc' AS applied_at,
       NULL::text AS checksum
FROM _yoyo_migration
ORDER BY applied_at_utc, migration_id;

-- name: set_lock_timeout :exec
-- lock_timeout for the current transaction (is_local = true) or, outside one,
-- for the session; a migration then fails fast instead of queueing behind a
-- long transaction while production queries queue behind the migration.
SELECT set_config('lock_timeout', %(timeout)s, %(is_local)s);

-- name: mark_applied :exec
INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc)
VALUES (%(migration_hash)s, %(migration_id)s, clock_timestamp() AT TIME ZONE 'utc');

-- name: record_checksum :exec
INSERT INTO _trampolin_migration_checksums (migration_id, checksum)
VALUES (%(migration_id)s, %(checksum)s)
ON CONFLICT (migration_id) DO UPDATE SET checksum = excluded.checksum, recorded_at = now();

-- name: unmark_applied :exec
DELETE FROM _yoyo_migration WHERE migration_id = %(migration_id)s;

-- name: forget_checksum :exec
DELETE FROM _trampolin_migration_checksums WHERE migration_id = %(migration_id)s;

-- name: log_operation :exec
-- yoyo's audit log: one row per apply or rollback.
INSERT INTO _yoyo_log (id, migration_hash, migration_id, operation, username, hostname, created_at_utc)
VALUES (gen_random_uuid()::text, %(migration_hash)s, %(migration_id)s, %(operation)s,
        %(username)s, %(hostname)s, clock_timestamp() AT TIME ZONE 'utc');

-- name: invalid_indexes :many
-- Indexes left INVALID by a failed CREATE INDEX CONCURRENTLY (or REINDEX
-- CONCURRENTLY): they take writes but answer no query.
SELECT indexrelid::regclass::text AS name
FROM pg_index
WHERE NOT indisvalid
ORDER BY 1;

-- name: unadopted_prisma_database :one
-- Whether Prisma Migrate made this database (its _prisma_migrations table is
-- on the search path) and trampolin has recorded no migration in it yet. Such
-- a database is taken over with `trampolin adopt prisma`; migrating it would
-- create empty tables beside the full ones.
SELECT to_regclass('_prisma_migrations') IS NOT NULL
       AND to_regclass('_yoyo_migration') IS NULL AS unadopted;

-- name: try_xact_lock :one
-- The migration lock until the caller's transaction ends (apply_within:
-- migrations applied inside a larger transaction, e.g. trampolin adopt).
SELECT pg_try_advisory_xact_lock(%(key)s) AS locked;
