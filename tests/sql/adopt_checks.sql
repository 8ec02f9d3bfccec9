-- Read-only checks (and a few fixture helpers) for tests/test_adopt.py.

-- name: create_database_from :exec
CREATE DATABASE {database} TEMPLATE {template};

-- name: prisma_user :one
-- The n-th user of the app's table, by id (before adoption).
SELECT id, email FROM "User" ORDER BY id OFFSET %(n)s - 1 LIMIT 1;

-- name: insert_orphan_session :exec
INSERT INTO "Session" (id, "sessionToken", "userId", expires)
VALUES (%(id)s, 'orphan-token', 'cmnosuchuser0000000000000', %(expires)s);

-- name: catalog :one
-- Every schema, relation, column, constraint, index, type and function outside
-- the system schemas, as one digest.
SELECT md5(string_agg(item, E'\n' ORDER BY item)) AS digest
FROM (
    SELECT format('schema %s', nspname) AS item
    FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format('rel %s.%s %s', n.nspname, c.relname, c.relkind)
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format('col %s.%s.%s %s %s %s', n.nspname, c.relname, a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute AS a
    JOIN pg_class AS c ON c.oid = a.attrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname !~ '^(pg_|information_schema$)' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('con %s.%s %s', n.nspname, conname, pg_get_constraintdef(co.oid))
    FROM pg_constraint AS co JOIN pg_namespace AS n ON n.oid = co.connamespace
    WHERE n.nspname !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid))
    FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format('type %s.%s %s', n.nspname, t.typname,
                  (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                   FROM pg_enum WHERE enumtypid = t.oid))
    FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
    WHERE n.nspname !~ '^(pg_|information_schema$)'
    UNION ALL
    SELECT format('function %s.%s', n.nspname, p.oid::regprocedure)
    FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname !~ '^(pg_|information_schema$)'
) AS items;

-- name: user_tables :many
SELECT n.nspname AS schema_name, c.relname AS table_name
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^(pg_|information_schema$)'
ORDER BY 1, 2;

-- name: table_digest :copy
-- The table's rows, as one digest.
COPY (SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), ''))
      FROM {schema}.{table} AS t) TO STDOUT;

-- name: archived_tables :many
SELECT c.relname AS name
FROM pg_class AS c
WHERE c.relnamespace = 'prisma_archive'::regnamespace AND c.relkind = 'r'
ORDER BY 1;

-- name: archived_types :many
SELECT typname AS name FROM pg_type
WHERE typnamespace = 'prisma_archive'::regnamespace AND typtype = 'e'
ORDER BY 1;

-- name: public_relations :many
SELECT relname AS name FROM pg_class
WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
ORDER BY 1;

-- name: adopted_users :many
-- Every adopted user beside the archived row it came from.
SELECT u.id, u.legacy_id, u.email, u.name, u.email_verified, u.image, u.stripe_customer_id,
       u.created_at, u.updated_at, r.name AS role,
       p.id AS old_id, p.email AS old_email, p.name AS old_name,
       p."emailVerified" AS old_email_verified, p.image AS old_image,
       p."stripeCustomerId" AS old_stripe_customer_id, p."createdAt" AS old_created_at,
       p."updatedAt" AS old_updated_at, pr.name AS old_role
FROM prisma_archive."User" AS p
LEFT JOIN users AS u ON u.legacy_id = p.id
LEFT JOIN roles AS r ON r.id = u.role_id
LEFT JOIN prisma_archive."Role" AS pr ON pr.id = p."roleId"
ORDER BY p.id;

-- name: archived_sessions :many
SELECT "sessionToken" AS token, "userId" AS user_id, expires FROM prisma_archive."Session"
ORDER BY id;

-- name: archived_verification_tokens :many
SELECT identifier, token, expires FROM prisma_archive."VerificationToken" ORDER BY token;

-- name: archived_accounts :many
SELECT a."userId" AS user_id, a.provider, a."providerAccountId" AS provider_account_id,
       a.type, a.refresh_token, a.access_token, a.expires_at, a.token_type, a.scope,
       a.id_token, a.session_state
FROM prisma_archive."Account" AS a ORDER BY a.id;

-- name: archived_uploads :many
SELECT c.id, c."userId" AS user_id, c."originalName" AS original_name, c.status::text AS status,
       c."fileSize" AS file_size, c."errorMessage" AS error_message, c.headers,
       c."createdAt" AS created_at, c."updatedAt" AS updated_at,
       (SELECT count(*) FROM prisma_archive."CsvRow" AS r WHERE r."uploadId" = c.id) AS row_count
FROM prisma_archive."CsvUpload" AS c ORDER BY c.id;

-- name: archived_rows_of :many
SELECT "rowIndex" AS row_index, data FROM prisma_archive."CsvRow"
WHERE "uploadId" = %(upload_id)s ORDER BY "rowIndex", id;

-- name: count_target_rows :one
SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM accounts) AS accounts,
       (SELECT count(*) FROM sessions) AS sessions,
       (SELECT count(*) FROM verification_tokens) AS verification_tokens,
       (SELECT count(*) FROM csv_uploads) AS csv_uploads, (SELECT count(*) FROM csv_rows) AS csv_rows;

-- name: legacy_uuids :many
SELECT s AS legacy_id, legacy_uuid(s) AS id FROM unnest(%(ids)s::text[]) AS s;

-- name: backend_gone :one
-- Whether no session is connected to that database any more (but this one).
SELECT count(*) AS others FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid();

-- name: adopted_accounts :many
-- The adopted accounts, in the order of the app's rows they came from.
SELECT a.user_id, a.provider, a.provider_account_id, a.type, a.refresh_token, a.access_token,
       a.expires_at, a.token_type, a.scope, a.id_token, a.session_state
FROM prisma_archive."Account" AS p
JOIN accounts AS a ON a.id = legacy_uuid(p.id)
ORDER BY p.id;

-- name: upload_by_legacy_id :one
SELECT id FROM csv_uploads WHERE legacy_id = %(legacy_id)s;

-- name: keep_only_csv_row_conflicts :exec
-- Of add_conflicts' rows, keep those only the CsvRow move can find.
WITH users AS (DELETE FROM "User" WHERE id = ANY (%(ids)s::text[])),
     roles AS (DELETE FROM "Role" WHERE id = ANY (%(ids)s::text[])),
     sessions AS (DELETE FROM "Session" WHERE id = ANY (%(ids)s::text[])),
     subscriptions AS (DELETE FROM "Subscription" WHERE id = ANY (%(ids)s::text[])),
     searches AS (DELETE FROM "Search" WHERE id = ANY (%(ids)s::text[])),
     analyses AS (DELETE FROM "UrlAnalysis" WHERE id = ANY (%(ids)s::text[])),
     refunds AS (DELETE FROM "Refund" WHERE id = ANY (%(ids)s::text[]))
UPDATE "CsvUpload" SET "totalRows" = "totalRows" + 3 WHERE id = 'cmodduploadquotesnewlines';

-- name: break_no_search :exec
-- The app's schema before its hand-written production script.
ALTER TABLE "UrlAnalysis" DROP COLUMN "searchId";
DROP TABLE "Search";

-- name: break_no_csv_row :exec
DROP TABLE "CsvRow";

-- name: break_timestamptz :exec
ALTER TABLE "User" ALTER COLUMN "createdAt" TYPE timestamptz(3);

-- name: break_unfinished :exec
INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
VALUES ('3c2b1a09-8f7e-4d6c-b5a4-938271605f4e', 'ab', '20250905000000_add_x', now(), 0);

-- name: break_archive_exists :exec
CREATE SCHEMA prisma_archive;

-- name: lock_user_table :exec
-- What an app's write holds on "User" until its transaction ends.
LOCK TABLE "User" IN ROW EXCLUSIVE MODE;

-- name: hold_migration_lock :one
SELECT pg_advisory_xact_lock(%(key)s) AS held;

-- name: hold_nothing :one
-- A first statement: opens the connection's transaction.
SELECT 1 AS one;

-- name: block_csv_rows :exec
-- Until this transaction ends, an INSERT into csv_rows waits.
LOCK TABLE csv_rows IN SHARE MODE;

-- name: waiting_on_csv_rows :one
SELECT pid FROM pg_locks WHERE relation = 'csv_rows'::regclass AND NOT granted LIMIT 1;

-- name: roll_back_from_archive :exec
-- docs/adopt.md's rollback, for every table the fixture has.
ALTER TABLE prisma_archive."User" SET SCHEMA public;
ALTER TABLE prisma_archive."Role" SET SCHEMA public;
ALTER TABLE prisma_archive."Account" SET SCHEMA public;
ALTER TABLE prisma_archive."Session" SET SCHEMA public;
ALTER TABLE prisma_archive."VerificationToken" SET SCHEMA public;
ALTER TABLE prisma_archive."Subscription" SET SCHEMA public;
ALTER TABLE prisma_archive."Search" SET SCHEMA public;
ALTER TABLE prisma_archive."UrlAnalysis" SET SCHEMA public;
ALTER TABLE prisma_archive."CsvUpload" SET SCHEMA public;
ALTER TABLE prisma_archive."CsvRow" SET SCHEMA public;
ALTER TABLE prisma_archive."Refund" SET SCHEMA public;
ALTER TABLE prisma_archive._prisma_migrations SET SCHEMA public;
ALTER TYPE prisma_archive."SubscriptionStatus" SET SCHEMA public;
ALTER TYPE prisma_archive."CsvUploadStatus" SET SCHEMA public;
DROP TABLE prisma_archive._trampolin_adoption;
DROP SCHEMA prisma_archive;
