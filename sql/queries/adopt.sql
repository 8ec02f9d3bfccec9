-- Taking over a Prisma-made Trampolin database (trampolin.adopt, `trampolin adopt prisma`).
--
-- The app's tables ("User", "CsvRow", ...: quoted PascalCase, text cuid ids,
-- TIMESTAMP(3) holding UTC) live in the connection's current schema, as
-- Prisma made them. Every row moves with one INSERT ... SELECT per table, so
-- nothing passes through the client. Old ids become legacy_uuid(id)
-- (sql/migrations/0014_legacy_ids.sql); "x" AT TIME ZONE 'UTC' reads a
-- TIMESTAMP(3) as the UTC instant it holds, whatever the session's TimeZone;
-- tokens are stored as sha256 of their UTF-8 bytes, as trampolin.auth.hash_token.
-- The one thing the server cannot do alone is normalize the analyses' URLs
-- (trampolin.analysis_urls): the client reads the distinct URLs through a
-- cursor and writes url -> normalized into a temporary table, a batch at a
-- time (its memory stays flat), which the checks and the move then join.
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

-- name: url_keys_exist :one
-- Whether this session made adopt_url_keys already (the dry run makes it
-- before its transaction turns read-only).
SELECT to_regclass('pg_temp.adopt_url_keys') IS NOT NULL AS found;

-- name: create_url_keys :exec
-- Each distinct "UrlAnalysis".url and the URL trampolin stores for it:
-- normalized by trampolin.analysis_urls, or as it is if that refuses it (no
-- new analysis can have such a URL, since every new one is normalized).
CREATE TEMPORARY TABLE adopt_url_keys (
    url        text PRIMARY KEY,
    normalized text NOT NULL
) ON COMMIT DROP;

-- name: clear_url_keys :exec
DELETE FROM adopt_url_keys;

-- name: open_app_urls :exec
-- A cursor over the distinct URLs, read a batch at a time (fetch_app_urls).
DECLARE adopt_app_urls NO SCROLL CURSOR FOR SELECT DISTINCT url FROM "UrlAnalysis";

-- name: fetch_app_urls :many
-- The next batch of the cursor; no rows: done. (FETCH takes no parameter.)
FETCH FORWARD 5000 FROM adopt_app_urls;

-- name: close_app_urls :exec
CLOSE adopt_app_urls;

-- name: copy_url_keys :copy
COPY adopt_url_keys (url, normalized) FROM STDIN;

-- name: app_plans :many
-- The Stripe prices of the subscriptions that grant access (active, trialing,
-- past_due), each with the highest monthly and trial limit its rows hold:
-- the app wrote its hard-coded limit on a row when the row was used, and the
-- schema's default (500) on a row Stripe's webhook made, so the highest is
-- the price's limit and no adopted user gets less than the app gave. A price
-- plans cannot hold (blank, spaces, over 255 characters: plans_price_id_check,
-- written without its {1,255}, slow in PostgreSQL's regex engine) gets the
-- default plan.
SELECT "priceId" AS price_id, max("monthlyLimit") AS monthly_limit,
       max("trialLimit") AS trial_limit, count(*) AS subscriptions
FROM "Subscription"
WHERE status::text IN ('active', 'trialing', 'past_due')
  AND "priceId" <> '' AND length("priceId") <= 255 AND "priceId" !~ '[[:space:]]'
GROUP BY "priceId"
ORDER BY "priceId";

-- name: watch_client :one
-- The server checks every second that this client is still there, so a
-- killed adoption aborts (and rolls back) at once. PostgreSQL 14+.
SELECT set_config('client_connection_check_interval', '1s', true) AS value
WHERE current_setting('server_version_num')::integer >= 140000;

-- name: read_only :exec
-- The dry run's transaction reads only from here on (its temporary table, made
-- before, can still be written).
SELECT set_config('transaction_read_only', 'on', true);

-- name: bulk_settings :exec
-- For the adoption's transaction: no JIT (it compiles each big statement
-- once, ~0.3-1 s of LLVM apiece, and adoption runs each statement once:
-- measured, it doubled the time of a 100k-row adoption).
SELECT set_config('jit', 'off', true);

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
    SELECT table_name, id, 'id is written like a UUID, but not in standard form', NULL
    FROM (SELECT 'User' AS table_name, id FROM "User"
          UNION ALL SELECT 'UrlAnalysis', id FROM "UrlAnalysis") AS ids
    WHERE id !~ '^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$'
      AND length(replace(btrim(replace(replace(id, 'urn:', ''), 'uuid:', ''), '{}'), '-', '')) = 32
      AND replace(btrim(replace(replace(id, 'urn:', ''), 'uuid:', ''), '{}'), '-', '')
          ~ '^[[:space:]]*\+?(0[xX])?[0-9A-Fa-f_]+[[:space:]]*$'
    UNION ALL
    -- users.password_hash admits these only (migration 0008's check, written
    -- without its {53}, which costs PostgreSQL's regex engine ~20 us a row);
    -- the hash itself is not shown.
    SELECT 'User', id,
           'passwordHash is not a bcrypt hash trampolin verifies ($2a$, $2b$ or $2y$, cost, 53 characters)',
           coalesce('it begins ' || substring("passwordHash" FROM '^\$[0-9a-z]{1,8}\$'), 'it has no $scheme$ prefix')
    FROM "User"
    WHERE length("passwordHash") <> 60
       OR "passwordHash" !~ '^\$2[aby]\$[0-9][0-9]\$[./A-Za-z0-9]*$'
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
    UNION ALL
    SELECT 'Subscription', s.id, 'references a missing "User"', s."userId"
    FROM "Subscription" AS s WHERE NOT EXISTS (SELECT FROM "User" AS u WHERE u.id = s."userId")
    UNION ALL
    SELECT 'Subscription', id, 'status is not a Stripe subscription status', status::text
    FROM "Subscription"
    WHERE status::text NOT IN ('incomplete', 'incomplete_expired', 'trialing', 'active',
                               'past_due', 'canceled', 'unpaid', 'paused')
    UNION ALL
    SELECT 'Subscription', id, 'a number is negative',
           format('quantity %%s, monthlyLimit %%s, usedThisMonth %%s, trialLimit %%s, trialUsed %%s',
                  quantity, "monthlyLimit", "usedThisMonth", "trialLimit", "trialUsed")
    FROM "Subscription"
    WHERE least(quantity, "monthlyLimit", "usedThisMonth", "trialLimit", "trialUsed") < 0
    UNION ALL
    -- trampolin keeps one sign-up row (no Stripe subscription yet) per user.
    SELECT 'Subscription', id, 'its user has another subscription without stripeSubscriptionId',
           detail
    FROM (SELECT id, count(*) OVER same AS n, string_agg(id, ', ') OVER same AS detail
          FROM "Subscription" WHERE "stripeSubscriptionId" IS NULL
          WINDOW same AS (PARTITION BY "userId")) AS s
    WHERE n > 1
    UNION ALL
    SELECT 'UrlAnalysis', a.id, 'references a missing "User"', a."userId"
    FROM "UrlAnalysis" AS a WHERE NOT EXISTS (SELECT FROM "User" AS u WHERE u.id = a."userId")
    UNION ALL
    SELECT 'UrlAnalysis', id, 'status is not pending, processing, completed or failed', status
    FROM "UrlAnalysis" WHERE status NOT IN ('pending', 'processing', 'completed', 'failed')
    UNION ALL
    SELECT 'UrlAnalysis', a.id, 'url is empty or longer than 2048 characters',
           format('%%s characters', length(k.normalized))
    FROM "UrlAnalysis" AS a JOIN adopt_url_keys AS k ON k.url = a.url
    WHERE k.normalized = '' OR length(k.normalized) > 2048
    UNION ALL
    -- trampolin keeps one analysis per user and normalized URL (the app's
    -- findFirst-then-create made two under concurrent requests).
    SELECT 'UrlAnalysis', id, 'the same user and URL as another analysis, once normalized', detail
    FROM (SELECT a.id, count(*) OVER same AS n,
                 k.normalized || ': ' || string_agg(a.id || ' ' || a.url, ', ') OVER same AS detail
          FROM "UrlAnalysis" AS a JOIN adopt_url_keys AS k ON k.url = a.url
          WINDOW same AS (PARTITION BY a."userId", k.normalized)) AS a
    WHERE n > 1
    UNION ALL
    SELECT 'Refund', id, 'amount is negative', amount::text FROM "Refund" WHERE amount < 0
    UNION ALL
    SELECT 'Refund', id, 'currency is not a three-letter ISO code', currency
    FROM "Refund" WHERE currency !~ '^[A-Za-z]{3}$'
    UNION ALL
    SELECT 'Refund', id, 'status is not a Stripe refund status', status
    FROM "Refund"
    WHERE status NOT IN ('pending', 'requires_action', 'succeeded', 'failed', 'canceled')
)
SELECT table_name, id, problem, detail,
       count(*) OVER (PARTITION BY table_name, problem) AS total
FROM refused
ORDER BY row_number() OVER (PARTITION BY table_name, problem ORDER BY id), table_name, problem, id
LIMIT %(limit)s;

-- name: refused_search_rows :many
-- As refused_rows, for the "Search" table and "UrlAnalysis"."searchId" that
-- the app's production script added (asked only when "Search" exists). A
-- search's analyses are the analyses whose searchId names it (an analysis a
-- later search re-ran names that search only).
WITH linked AS (
    SELECT "searchId" AS search_id, count(*) AS analyses
    FROM "UrlAnalysis" WHERE "searchId" IS NOT NULL GROUP BY "searchId"
),
refused AS (
    SELECT 'Search' AS table_name, s.id, 'references a missing "User"' AS problem,
           s."userId" AS detail
    FROM "Search" AS s WHERE NOT EXISTS (SELECT FROM "User" AS u WHERE u.id = s."userId")
    UNION ALL
    SELECT 'Search', id, 'status is not pending, completed or failed', status
    FROM "Search" WHERE status NOT IN ('pending', 'completed', 'failed')
    UNION ALL
    SELECT 'Search', s.id, 'urlCount is not positive, or below the analyses that name the search',
           format('urlCount %%s, %%s analyses', s."urlCount", coalesce(l.analyses, 0))
    FROM "Search" AS s LEFT JOIN linked AS l ON l.search_id = s.id
    WHERE s."urlCount" < greatest(1, l.analyses)
    UNION ALL
    SELECT 'Search', id, 'totalReach is negative', "totalReach"::text
    FROM "Search" WHERE "totalReach" < 0
    UNION ALL
    SELECT 'Search', id, 'id is written like a UUID, but not in standard form', NULL
    FROM "Search"
    WHERE id !~ '^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$'
      AND length(replace(btrim(replace(replace(id, 'urn:', ''), 'uuid:', ''), '{}'), '-', '')) = 32
      AND replace(btrim(replace(replace(id, 'urn:', ''), 'uuid:', ''), '{}'), '-', '')
          ~ '^[[:space:]]*\+?(0[xX])?[0-9A-Fa-f_]+[[:space:]]*$'
    UNION ALL
    SELECT 'UrlAnalysis', a.id,
           CASE WHEN s.id IS NULL THEN 'references a missing "Search"'
                ELSE 'belongs to another user than its search' END,
           a."searchId"
    FROM "UrlAnalysis" AS a LEFT JOIN "Search" AS s ON s.id = a."searchId"
    WHERE a."searchId" IS NOT NULL AND (s.id IS NULL OR s."userId" <> a."userId")
)
SELECT table_name, id, problem, detail,
       count(*) OVER (PARTITION BY table_name, problem) AS total
FROM refused
ORDER BY row_number() OVER (PARTITION BY table_name, problem ORDER BY id), table_name, problem, id
LIMIT %(limit)s;

-- name: refused_csv_rows :many
-- The "CsvRow" rows that cannot become csv_rows: data that is not a JSON
-- object, keys that are not among the upload's headers (their values would be
-- lost), or an upload that does not exist: the same test as move_csv_rows's
-- WHERE clause, so a short move is explained by these rows. And a rowIndex
-- below 0 or found twice in one upload, which csv_rows's primary key and
-- check refuse during the move (the app's storeCsvData numbers each upload's
-- rows 0, 1, 2, ... in file order, so neither happens but by hand).
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
    UNION ALL
    SELECT id, 'rowIndex is negative, or another row of its upload has it too',
           format('upload %%s, rowIndex %%s', "uploadId", "rowIndex")
    FROM (SELECT id, "uploadId", "rowIndex",
                 count(*) OVER (PARTITION BY "uploadId", "rowIndex") AS n
          FROM "CsvRow") AS r
    WHERE n > 1 OR "rowIndex" < 0
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
-- The bcrypt hash as Node wrote it: trampolin.passwords verifies it unchanged.
INSERT INTO users (id, legacy_id, name, email, email_verified, image, password_hash, role_id,
                   stripe_customer_id, created_at, updated_at)
SELECT legacy_uuid(u.id), u.id, u.name, u.email, u."emailVerified" AT TIME ZONE 'UTC',
       u.image, u."passwordHash", r.id, u."stripeCustomerId",
       u."createdAt" AT TIME ZONE 'UTC', u."updatedAt" AT TIME ZONE 'UTC'
FROM "User" AS u
LEFT JOIN "Role" AS pr ON pr.id = u."roleId"
LEFT JOIN roles AS r ON r.name = pr.name;

-- name: move_accounts :execrows
-- OAuth tokens unchanged. The app's Account has no timestamps: now().
INSERT INTO accounts (id, user_id, type, provider, provider_account_id, refresh_token,
                      access_token, expires_at, token_type, scope, id_token, session_state)
SELECT legacy_uuid(a.id), u.id, a.type, a.provider, a."providerAccountId", a.refresh_token,
       a.access_token, a.expires_at, a.token_type, a.scope, a.id_token, a.session_state
FROM "Account" AS a
JOIN users AS u ON u.legacy_id = a."userId";

-- name: move_sessions :execrows
-- Expired sessions too: every row is kept, and reading one deletes it.
INSERT INTO sessions (session_token_hash, user_id, expires)
SELECT sha256(convert_to(s."sessionToken", 'UTF8')), u.id, s.expires AT TIME ZONE 'UTC'
FROM "Session" AS s
JOIN users AS u ON u.legacy_id = s."userId";

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
SELECT c.id, o.id, c."originalName", c.status::text,
       coalesce(c.headers, '{}'), coalesce(n.count_rows, 0),
       c."fileSize", c."errorMessage",
       c."createdAt" AT TIME ZONE 'UTC', c."updatedAt" AT TIME ZONE 'UTC'
FROM "CsvUpload" AS c
JOIN users AS o ON o.legacy_id = c."userId"
LEFT JOIN (SELECT "uploadId", count(*) AS count_rows FROM "CsvRow" GROUP BY "uploadId") AS n
       ON n."uploadId" = c.id
ORDER BY c."createdAt", c.id;

-- name: move_csv_rows :execrows
-- Each data object becomes its values in the upload's headers order: a JSON
-- null (the app's empty cell) or a missing key is '', a number or another
-- non-string value its JSON text. row_index is the app's rowIndex + 1 (its
-- storeCsvData numbered rows from 0 in file order): no renumbering, so no sort
-- of every row; a rowIndex below 0 or twice in an upload fails the statement
-- (trampolin.adopt then names the rows, as refused_csv_rows does). Rows that
-- refused_csv_rows names otherwise are left out, so the count tells.
INSERT INTO csv_rows (upload_id, row_index, "values")
SELECT u.id, r."rowIndex" + 1,
       ARRAY(SELECT coalesce(r.data ->> h.name, '')
             FROM unnest(u.headers) WITH ORDINALITY AS h(name, n)
             ORDER BY h.n)
FROM "CsvRow" AS r
JOIN csv_uploads AS u ON u.legacy_id = r."uploadId"
WHERE CASE WHEN jsonb_typeof(r.data) = 'object'
           THEN r.data - u.headers = '{}'::jsonb
           ELSE false END;

-- name: move_subscriptions :execrows
-- The app's trialing rows without a Stripe subscription (made at sign-up)
-- keep a NULL stripe_subscription_id. A trialing row's current period is its
-- trial (the app's sign-up gave 7 days; Stripe's trialing period is the trial),
-- so it is trial_start .. trial_end too: a sign-up trial grants until then.
-- No Stripe event made these rows: last_event_* keep their defaults, which
-- sort before every event, so the next event of the subscription applies.
-- An empty priceId (the app's webhook wrote '' without an item) is NULL.
INSERT INTO subscriptions (id, stripe_subscription_id, user_id, stripe_customer_id, status,
                           price_id, quantity, current_period_start, current_period_end,
                           cancel_at_period_end, canceled_at, trial_start, trial_end,
                           created_at, updated_at)
SELECT legacy_uuid(s.id), s."stripeSubscriptionId", u.id, s."stripeCustomerId", s.status::text, nullif(s."priceId", ''), s.quantity,
       s."currentPeriodStart" AT TIME ZONE 'UTC', s."currentPeriodEnd" AT TIME ZONE 'UTC',
       s."cancelAtPeriodEnd", s."canceledAt" AT TIME ZONE 'UTC',
       CASE WHEN s.status::text = 'trialing' THEN s."currentPeriodStart" AT TIME ZONE 'UTC' END,
       CASE WHEN s.status::text = 'trialing' THEN s."currentPeriodEnd" AT TIME ZONE 'UTC' END,
       s."createdAt" AT TIME ZONE 'UTC', s."updatedAt" AT TIME ZONE 'UTC'
FROM "Subscription" AS s
JOIN users AS u ON u.legacy_id = s."userId";

-- name: create_plans :many
-- The plans app_plans found, unless trampolin has a plan for that price
-- already; returns the prices it created.
INSERT INTO plans (price_id, name, monthly_limit, trial_limit)
SELECT price_id, 'adopted from the app''s subscriptions', monthly_limit, trial_limit
FROM unnest(%(price_ids)s::text[], %(monthly_limits)s::integer[], %(trial_limits)s::integer[])
     AS p (price_id, monthly_limit, trial_limit)
ON CONFLICT (price_id) DO NOTHING
RETURNING price_id;

-- name: move_searches :execrows
-- A search waits for its analyses that are still pending or processing
-- (pending_count): trampolin's workers run those and complete the search. One
-- with none left to wait for is failed if the app said so or every analysis
-- failed, else completed (a search the app left 'pending' because its request
-- died after the analyses finished is completed).
INSERT INTO searches (id, user_id, status, url_count, pending_count, failed_count, total_reach,
                      completed_at, created_at, updated_at)
SELECT legacy_uuid(s.id), u.id,
       CASE WHEN n.pending > 0 THEN 'pending'
            WHEN s.status = 'failed' OR n.failed = s."urlCount" THEN 'failed'
            ELSE 'completed' END,
       s."urlCount", n.pending, n.failed, s."totalReach",
       CASE WHEN n.pending = 0 THEN s."updatedAt" AT TIME ZONE 'UTC' END,
       s."createdAt" AT TIME ZONE 'UTC', s."updatedAt" AT TIME ZONE 'UTC'
FROM "Search" AS s
JOIN users AS u ON u.legacy_id = s."userId"
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE a.status IN ('pending', 'processing')) AS pending,
           count(*) FILTER (WHERE a.status = 'failed') AS failed
    FROM "UrlAnalysis" AS a WHERE a."searchId" = s.id
) AS n;

-- name: move_url_analyses :execrows
-- The URL as trampolin.analysis_urls normalizes it (adopt_url_keys). reach is
-- the results' totalReach (the app's figure) when the analysis completed. A
-- 'processing' one counts as claimed when the app last touched it, so a
-- worker takes it again after analyses.STALE_AFTER; a pending one is queued.
-- Nothing was charged for a run here: charged_period_start stays NULL.
INSERT INTO url_analyses (id, user_id, url, status, results, reach, attempts, queued_at,
                          claimed_at, finished_at, created_at, updated_at)
SELECT legacy_uuid(a.id), u.id, k.normalized, a.status, a.results,
       CASE WHEN a.status = 'completed' AND jsonb_typeof(a.results -> 'totalReach') = 'number'
                 AND a.results ->> 'totalReach' ~ '^[0-9]{1,18}$'
            THEN (a.results ->> 'totalReach')::bigint END,
       (a.status = 'processing')::integer,
       a."createdAt" AT TIME ZONE 'UTC',
       CASE WHEN a.status = 'processing' THEN a."updatedAt" AT TIME ZONE 'UTC' END,
       CASE WHEN a.status IN ('completed', 'failed') THEN a."updatedAt" AT TIME ZONE 'UTC' END,
       a."createdAt" AT TIME ZONE 'UTC', a."updatedAt" AT TIME ZONE 'UTC'
FROM "UrlAnalysis" AS a
JOIN users AS u ON u.legacy_id = a."userId"
JOIN adopt_url_keys AS k ON k.url = a.url;

-- name: link_search_analyses :execrows
-- Each analysis in the search its searchId names, in the order the analyses
-- were made, with the outcome it has (processing: still pending there).
INSERT INTO search_analyses (search_id, analysis_id, position, status, reach)
SELECT legacy_uuid(a."searchId"), u.id,
       row_number() OVER (PARTITION BY a."searchId" ORDER BY a."createdAt", a.id),
       CASE WHEN a.status = 'processing' THEN 'pending' ELSE a.status END,
       u.reach
FROM "UrlAnalysis" AS a
JOIN url_analyses AS u ON u.id = legacy_uuid(a.id)
WHERE a."searchId" IS NOT NULL;

-- name: move_refunds :execrows
-- The admin is kept by id and by e-mail (the adopted user's); a refund whose
-- admin is not among the users keeps neither (the cuid stays in the archive).
-- stripe_created is unknown (the app recorded when it wrote the row).
INSERT INTO refunds (id, stripe_refund_id, stripe_charge_id, stripe_payment_intent_id, amount,
                     currency, reason, status, admin_user_id, admin_email, customer_email, note,
                     metadata, created_at, updated_at)
SELECT legacy_uuid(r.id), r."stripeRefundId", nullif(r."stripeChargeId", ''),
       nullif(r."stripePaymentIntentId", ''), r.amount, lower(r.currency), nullif(r.reason, ''),
       r.status, u.id, u.email, r."customerEmail", r."adminNote", r.metadata,
       r."createdAt" AT TIME ZONE 'UTC', r."updatedAt" AT TIME ZONE 'UTC'
FROM "Refund" AS r
LEFT JOIN users AS u ON u.legacy_id = r."adminUserId";

-- name: adopt_usage :one
-- The app's usage counter of each user's subscription, in the usage period
-- trampolin counts now, with one ledger row that explains it, so that
-- usage_period_balances holds (used = ledger_total). The counter is trialUsed
-- while trialing, else usedThisMonth, or 0 when lastUsageReset is before the
-- current billing period (the app reset it at its next read). Only the
-- subscription usage_window picks for the user counts (it is the one whose
-- allowance Usage shows; it grants access: active, trialing or past_due);
-- admins are unlimited and charged nothing by the app.
-- Runs after users, roles, subscriptions and plans are in place.
WITH counters AS (
    SELECT legacy_uuid(s.id) AS subscription_id, u.id AS user_id, c.used,
           format('adopted: %%s of the app''s Subscription %%s', c.counter, s.id) AS reason
    FROM "Subscription" AS s
    JOIN users AS u ON u.legacy_id = s."userId"
    CROSS JOIN LATERAL (
        SELECT CASE WHEN s.status::text = 'trialing' THEN s."trialUsed"
                    WHEN s."lastUsageReset" < s."currentPeriodStart" THEN 0
                    ELSE s."usedThisMonth" END AS used,
               CASE WHEN s.status::text = 'trialing' THEN 'trialUsed'
                    ELSE 'usedThisMonth' END AS counter
    ) AS c
    WHERE s.status::text IN ('active', 'trialing', 'past_due') AND c.used > 0
),
chosen AS (
    SELECT w.user_id, w.period_start, w.period_end, w.trial, w.usage_limit, c.used, c.reason
    FROM counters AS c
    CROSS JOIN LATERAL usage_window(c.user_id, now()) AS w
    WHERE c.used > 0 AND w.subscription_id = c.subscription_id AND w.period_start IS NOT NULL
),
periods AS (
    INSERT INTO usage_periods (user_id, period_start, period_end, trial, usage_limit, used)
    SELECT user_id, period_start, period_end, trial, usage_limit, used FROM chosen
    RETURNING 1
),
ledger AS (
    INSERT INTO usage_ledger (user_id, period_start, amount, reason)
    SELECT user_id, period_start, used, reason FROM chosen
    RETURNING 1
)
SELECT (SELECT count(*) FROM periods) AS periods, (SELECT count(*) FROM ledger) AS ledger_rows;

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
