-- Taking over a Prisma-made Trampolin database (trampolin.adopt, `trampolin adopt prisma`).
--
-- The app's tables ("User", "CsvRow", ...: quoted PascalCase, text cuid ids,
-- TIMESTAMP(3) holding UTC) live in the connection's current schema, as
-- Prisma made them. Every row moves with one INSERT ... SELECT per table, so
-- nothing passes through the client. Old ids become legacy_uuid(id)
-- (sql/migrations/0014_legacy_ids.sql); "x" AT TIME ZONE 'UTC' reads a
-- TIMESTAMP(3) as the UTC instant it holds, whatever the session's TimeZone;
-- tokens are stored as sha256 of their UTF-8 bytes, as trampolin.auth.hash_token.
-- Afterwards the app's tables, enum types and _prisma_migrations move into
-- schema prisma_archive: nothing is deleted.

-- name: survey :one
-- Where the Prisma tables would be, and whether an adoption already happened.
SELECT current_schema() AS schema,
       EXISTS (SELECT FROM pg_class
               WHERE relname = '_prisma_migrations' AND relkind IN ('r', 'p')
                 AND relnamespace = current_schema()::regnamespace) AS prisma_migrations,
       to_regnamespace('prisma_archive') IS NOT NULL AS archive_schema,
       to_regclass('prisma_archive._trampolin_adoption') IS NOT NULL AS adopted;

-- name: table_columns :many
-- The columns of these tables in the current schema, with their types as
-- format_type() spells them (e.g. "timestamp(3) without time zone").
SELECT c.relname AS table_name, a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS column_type
FROM pg_class AS c
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = current_schema()::regnamespace
  AND c.relkind IN ('r', 'p')
  AND c.relname = ANY (%(tables)s::text[])
ORDER BY c.relname, a.attnum;

-- name: enum_types :many
-- Which of these enum types exist in the current schema.
SELECT typname AS name
FROM pg_type
WHERE typnamespace = current_schema()::regnamespace AND typtype = 'e'
  AND typname = ANY (%(types)s::text[])
ORDER BY typname;

-- name: prisma_migrations :many
-- Prisma's record of its migrations, oldest first.
SELECT migration_name, finished_at, rolled_back_at
FROM _prisma_migrations
ORDER BY started_at, migration_name;

-- name: existing_tables :many
-- Which of these tables exist in the current schema.
SELECT relname AS name
FROM pg_class
WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')
  AND relname = ANY (%(tables)s::text[])
ORDER BY relname;

-- name: adoption_record :one
-- When this database was adopted, and the report of that run.
SELECT adopted_at, report FROM prisma_archive._trampolin_adoption;

-- name: table_rows :copy
-- Rows of one table, exactly (they are compared after the move); a COPY, as
-- that is how a query takes an identifier and gives a result.
COPY (SELECT count(*) FROM {table}) TO STDOUT;

-- name: users_with_password :one
-- Users whose passwordHash needs a home.
SELECT count(*) AS count_rows FROM "User" WHERE "passwordHash" IS NOT NULL;

-- name: watch_client :one
-- The server checks every second that this client is still there, so a
-- killed adoption aborts (and rolls back) at once. PostgreSQL 14+.
SELECT set_config('client_connection_check_interval', '1s', true) AS value
WHERE current_setting('server_version_num')::integer >= 140000;

-- name: set_lock_timeout :exec
-- How long to wait for the app's tables (the app must be stopped).
SELECT set_config('lock_timeout', %(timeout)s, true);

-- name: lock_tables :exec
-- Nobody reads or writes the app's tables until the adoption commits.
LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE;

-- name: refused_rows :many
-- Every row that cannot be taken over, with the reason, except the contents
-- of "CsvRow".data (refused_csv_rows). total: how many rows share that table
-- and problem; the first rows of every problem come before the second ones,
-- so that the limit cuts no problem out of the list. Each check matches a rule of trampolin's tables that Prisma's
-- did not enforce, or a reference whose target is missing (the production
-- script added foreign keys after rows existed).
WITH refused AS (
    SELECT 'User' AS table_name, id, 'has no e-mail (trampolin needs one)' AS problem,
           NULL::text AS detail
    FROM "User" WHERE email IS NULL
    UNION ALL
    SELECT 'User', id, 'e-mail differs from another user''s only in case', detail
    FROM (SELECT id, count(*) OVER same AS n,
                 string_agg(id || ' ' || email, ', ') OVER same AS detail
          FROM "User" WHERE email IS NOT NULL
          WINDOW same AS (PARTITION BY lower(email))) AS u
    WHERE n > 1
    UNION ALL
    -- user_key would read such an id as a UUID, not as an old id.
    SELECT 'User', id, 'id is written like a UUID, but not in standard form', NULL
    FROM "User"
    WHERE id !~ '^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$'
      AND length(replace(btrim(replace(replace(id, 'urn:', ''), 'uuid:', ''), '{}'), '-', '')) = 32
      AND replace(btrim(replace(replace(id, 'urn:', ''), 'uuid:', ''), '{}'), '-', '')
          ~ '^[[:space:]]*\+?(0[xX])?[0-9A-Fa-f_]+[[:space:]]*$'
    UNION ALL
    SELECT 'User', u.id, 'references a missing "Role"', u."roleId"
    FROM "User" AS u
    WHERE u."roleId" IS NOT NULL AND NOT EXISTS (SELECT FROM "Role" AS r WHERE r.id = u."roleId")
    UNION ALL
    SELECT 'Role', id, 'name is not a trampolin role name (lower snake_case)', name
    FROM "Role" WHERE name !~ '^[a-z][a-z0-9_]{0,62}$'
    UNION ALL
    SELECT 'Account', a.id, 'references a missing "User"', a."userId"
    FROM "Account" AS a WHERE NOT EXISTS (SELECT FROM "User" AS u WHERE u.id = a."userId")
    UNION ALL
    SELECT 'Session', s.id, 'references a missing "User"', s."userId"
    FROM "Session" AS s WHERE NOT EXISTS (SELECT FROM "User" AS u WHERE u.id = s."userId")
    UNION ALL
    SELECT 'CsvUpload', c.id, 'references a missing "User"', c."userId"
    FROM "CsvUpload" AS c WHERE NOT EXISTS (SELECT FROM "User" AS u WHERE u.id = c."userId")
    UNION ALL
    SELECT 'CsvUpload', id, 'status is not pending, processing, completed or failed', status::text
    FROM "CsvUpload" WHERE status::text NOT IN ('pending', 'processing', 'completed', 'failed')
    UNION ALL
    SELECT 'CsvUpload', id, 'fileSize is negative', "fileSize"::text
    FROM "CsvUpload" WHERE "fileSize" < 0
    UNION ALL
    SELECT 'CsvUpload', c.id, 'completed, but its rows do not number totalRows',
           format('%%s rows, totalRows %%s', coalesce(n.count_rows, 0), c."totalRows")
    FROM "CsvUpload" AS c
    LEFT JOIN (SELECT "uploadId", count(*) AS count_rows FROM "CsvRow" GROUP BY "uploadId") AS n
           ON n."uploadId" = c.id
    WHERE c.status::text = 'completed' AND coalesce(n.count_rows, 0) <> c."totalRows"
)
SELECT table_name, id, problem, detail,
       count(*) OVER (PARTITION BY table_name, problem) AS total
FROM refused
ORDER BY row_number() OVER (PARTITION BY table_name, problem ORDER BY id), table_name, problem, id
LIMIT %(limit)s;

-- name: refused_csv_rows :many
-- The "CsvRow" rows that cannot become csv_rows: data that is not a JSON
-- object, keys that are not among the upload's headers (their values would be
-- lost), or an upload that does not exist. The same test as move_csv_rows's
-- WHERE clause, so a short move is explained by these rows.
WITH refused AS (
    SELECT r.id,
           CASE WHEN c.id IS NULL THEN 'references a missing "CsvUpload"'
                WHEN jsonb_typeof(r.data) <> 'object' THEN 'data is not a JSON object'
                ELSE 'data has keys that are not among the upload''s headers'
           END AS problem,
           CASE WHEN c.id IS NULL THEN r."uploadId"
                WHEN jsonb_typeof(r.data) <> 'object' THEN left(r.data::text, 60)
                ELSE format('upload %%s: %%s', c.id,
                            (SELECT string_agg(k, ', ')
                             FROM jsonb_object_keys(r.data - coalesce(c.headers, '{}')) AS k))
           END AS detail
    FROM "CsvRow" AS r
    LEFT JOIN "CsvUpload" AS c ON c.id = r."uploadId"
    WHERE c.id IS NULL
       OR CASE WHEN jsonb_typeof(r.data) = 'object'
               THEN r.data - coalesce(c.headers, '{}') <> '{}'::jsonb
               ELSE true END
)
SELECT 'CsvRow' AS table_name, id, problem, detail,
       count(*) OVER (PARTITION BY problem) AS total
FROM refused
ORDER BY row_number() OVER (PARTITION BY problem ORDER BY id), problem, id
LIMIT %(limit)s;

-- name: move_roles :execrows
-- Roles are matched by name (trampolin's seed may have made admin and user);
-- the others are created with the app's timestamps.
INSERT INTO roles (name, created_at, updated_at)
SELECT name, "createdAt" AT TIME ZONE 'UTC', "updatedAt" AT TIME ZONE 'UTC'
FROM "Role"
ON CONFLICT (name) DO NOTHING;

-- name: move_users :execrows
-- passwordHash has no column here yet (the credentials migration brings it).
INSERT INTO users (id, legacy_id, name, email, email_verified, image, role_id,
                   stripe_customer_id, created_at, updated_at)
SELECT legacy_uuid(u.id), u.id, u.name, u.email, u."emailVerified" AT TIME ZONE 'UTC',
       u.image, r.id, u."stripeCustomerId",
       u."createdAt" AT TIME ZONE 'UTC', u."updatedAt" AT TIME ZONE 'UTC'
FROM "User" AS u
LEFT JOIN "Role" AS pr ON pr.id = u."roleId"
LEFT JOIN roles AS r ON r.name = pr.name;

-- name: move_accounts :execrows
-- OAuth tokens unchanged. The app's Account has no timestamps: now().
INSERT INTO accounts (id, user_id, type, provider, provider_account_id, refresh_token,
                      access_token, expires_at, token_type, scope, id_token, session_state)
SELECT legacy_uuid(id), legacy_uuid("userId"), type, provider, "providerAccountId",
       refresh_token, access_token, expires_at, token_type, scope, id_token, session_state
FROM "Account";

-- name: move_sessions :execrows
-- Expired sessions too: every row is kept, and reading one deletes it.
INSERT INTO sessions (session_token_hash, user_id, expires)
SELECT sha256(convert_to("sessionToken", 'UTF8')), legacy_uuid("userId"),
       expires AT TIME ZONE 'UTC'
FROM "Session";

-- name: move_verification_tokens :execrows
INSERT INTO verification_tokens (identifier, token_hash, expires)
SELECT identifier, sha256(convert_to(token, 'UTF8')), expires AT TIME ZONE 'UTC'
FROM "VerificationToken";

-- name: move_csv_uploads :execrows
-- New bigint ids in the order the uploads were made; the old id stays in
-- legacy_id. trampolin's filename is what the user uploaded (originalName);
-- the app's stored name ("filename") and validRows stay in the archive.
-- total_rows counts the rows taken over (refused_rows holds a completed
-- upload to its totalRows).
INSERT INTO csv_uploads (legacy_id, user_id, filename, status, headers, total_rows,
                         file_size, error_message, created_at, updated_at)
SELECT c.id, legacy_uuid(c."userId"), c."originalName", c.status::text,
       coalesce(c.headers, '{}'), coalesce(n.count_rows, 0),
       c."fileSize", c."errorMessage",
       c."createdAt" AT TIME ZONE 'UTC', c."updatedAt" AT TIME ZONE 'UTC'
FROM "CsvUpload" AS c
LEFT JOIN (SELECT "uploadId", count(*) AS count_rows FROM "CsvRow" GROUP BY "uploadId") AS n
       ON n."uploadId" = c.id
ORDER BY c."createdAt", c.id;

-- name: move_csv_rows :execrows
-- Each data object becomes its values in the upload's headers order: a JSON
-- null (the app's empty cell) or a missing key is '', a number or another
-- non-string value its JSON text. row_index numbers the rows from 1 in the
-- app's rowIndex order (0-based there, and not unique). Rows that
-- refused_csv_rows names are left out, so the count tells.
INSERT INTO csv_rows (upload_id, row_index, "values")
SELECT u.id,
       row_number() OVER (PARTITION BY u.id ORDER BY r."rowIndex", r.id),
       ARRAY(SELECT coalesce(r.data ->> h.name, '')
             FROM unnest(u.headers) WITH ORDINALITY AS h(name, n)
             ORDER BY h.n)
FROM "CsvRow" AS r
JOIN csv_uploads AS u ON u.legacy_id = r."uploadId"
WHERE CASE WHEN jsonb_typeof(r.data) = 'object'
           THEN r.data - u.headers = '{}'::jsonb
           ELSE false END;

-- name: create_archive :exec
CREATE SCHEMA prisma_archive;
COMMENT ON SCHEMA prisma_archive IS
    'The Prisma-made app tables as trampolin adopt found them; docs/adopt.md says how to drop it.';

-- name: archive_table :exec
ALTER TABLE {table} SET SCHEMA prisma_archive;

-- name: archive_type :exec
ALTER TYPE {type} SET SCHEMA prisma_archive;

-- name: create_adoption_record :exec
-- The adoption's own record: its presence means "already adopted".
CREATE TABLE prisma_archive._trampolin_adoption (
    adopted_at timestamptz NOT NULL DEFAULT now(),
    report     jsonb NOT NULL
);

-- name: insert_adoption_record :exec
INSERT INTO prisma_archive._trampolin_adoption (report) VALUES (%(report)s);
