-- A Prisma-made Trampolin database for tests/test_adopt.py (built by tests/adopt_support.py).
--
-- The schema is the app's as Prisma Migrate made it: its migrations
-- 20250903053802_init and 20250904021800_add_refund_model, then the
-- hand-written production script that added "Search" and
-- "UrlAnalysis"."searchId". Written here from those files' table and column
-- names and types (quoted PascalCase, text cuid ids, TIMESTAMP(3) holding UTC,
-- enum types), not copied. The data is made up, shaped as the app writes it:
-- ids like cuids, mixed-case e-mails, bcrypt hashes made by Node (passed in),
-- CsvRow.data objects keyed by the upload's headers with null for an empty
-- cell, rowIndex from 0. Times are "now" in UTC (the app's clock) shifted back.

-- name: create_app_schema :exec
CREATE TYPE "SubscriptionStatus" AS ENUM
    ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused');
CREATE TYPE "CsvUploadStatus" AS ENUM ('pending', 'processing', 'completed', 'failed');

CREATE TABLE "User" (
    "id" TEXT NOT NULL,
    "name" TEXT,
    "email" TEXT,
    "emailVerified" TIMESTAMP(3),
    "image" TEXT,
    "passwordHash" TEXT,
    "stripeCustomerId" TEXT,
    "roleId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Role" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Role_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Account" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "providerAccountId" TEXT NOT NULL,
    "refresh_token" TEXT,
    "access_token" TEXT,
    "expires_at" INTEGER,
    "token_type" TEXT,
    "scope" TEXT,
    "id_token" TEXT,
    "session_state" TEXT,
    CONSTRAINT "Account_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Session" (
    "id" TEXT NOT NULL,
    "sessionToken" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "expires" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Session_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "VerificationToken" (
    "identifier" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "expires" TIMESTAMP(3) NOT NULL
);
CREATE TABLE "Subscription" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "stripeCustomerId" TEXT NOT NULL,
    "stripeSubscriptionId" TEXT,
    "status" "SubscriptionStatus" NOT NULL,
    "priceId" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL DEFAULT 1,
    "currentPeriodStart" TIMESTAMP(3) NOT NULL,
    "currentPeriodEnd" TIMESTAMP(3) NOT NULL,
    "cancelAtPeriodEnd" BOOLEAN NOT NULL DEFAULT false,
    "canceledAt" TIMESTAMP(3),
    "monthlyLimit" INTEGER NOT NULL DEFAULT 500,
    "usedThisMonth" INTEGER NOT NULL DEFAULT 0,
    "lastUsageReset" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "trialLimit" INTEGER NOT NULL DEFAULT 10,
    "trialUsed" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Subscription_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "UrlAnalysis" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "results" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "UrlAnalysis_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "CsvUpload" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "filename" TEXT NOT NULL,
    "originalName" TEXT NOT NULL,
    "fileSize" INTEGER NOT NULL,
    "status" "CsvUploadStatus" NOT NULL DEFAULT 'pending',
    "totalRows" INTEGER NOT NULL DEFAULT 0,
    "validRows" INTEGER NOT NULL DEFAULT 0,
    "errorMessage" TEXT,
    "headers" TEXT[],
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "CsvUpload_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "CsvRow" (
    "id" TEXT NOT NULL,
    "uploadId" TEXT NOT NULL,
    "rowIndex" INTEGER NOT NULL,
    "data" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "CsvRow_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "User_email_key" ON "User" ("email");
CREATE UNIQUE INDEX "User_stripeCustomerId_key" ON "User" ("stripeCustomerId");
CREATE UNIQUE INDEX "Role_name_key" ON "Role" ("name");
CREATE UNIQUE INDEX "Account_provider_providerAccountId_key" ON "Account" ("provider", "providerAccountId");
CREATE UNIQUE INDEX "Session_sessionToken_key" ON "Session" ("sessionToken");
CREATE UNIQUE INDEX "VerificationToken_token_key" ON "VerificationToken" ("token");
CREATE UNIQUE INDEX "VerificationToken_identifier_token_key" ON "VerificationToken" ("identifier", "token");
CREATE UNIQUE INDEX "Subscription_stripeCustomerId_key" ON "Subscription" ("stripeCustomerId");
CREATE UNIQUE INDEX "Subscription_stripeSubscriptionId_key" ON "Subscription" ("stripeSubscriptionId");
CREATE INDEX "CsvRow_uploadId_rowIndex_idx" ON "CsvRow" ("uploadId", "rowIndex");

ALTER TABLE "User" ADD CONSTRAINT "User_roleId_fkey"
    FOREIGN KEY ("roleId") REFERENCES "Role" ("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "Account" ADD CONSTRAINT "Account_userId_fkey"
    FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Session" ADD CONSTRAINT "Session_userId_fkey"
    FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Subscription" ADD CONSTRAINT "Subscription_userId_fkey"
    FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UrlAnalysis" ADD CONSTRAINT "UrlAnalysis_userId_fkey"
    FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "CsvUpload" ADD CONSTRAINT "CsvUpload_userId_fkey"
    FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "CsvRow" ADD CONSTRAINT "CsvRow_uploadId_fkey"
    FOREIGN KEY ("uploadId") REFERENCES "CsvUpload" ("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- 20250904021800_add_refund_model
CREATE TABLE "Refund" (
    "id" TEXT NOT NULL,
    "stripeRefundId" TEXT NOT NULL,
    "stripeChargeId" TEXT NOT NULL,
    "stripePaymentIntentId" TEXT NOT NULL,
    "amount" INTEGER NOT NULL,
    "currency" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "adminUserId" TEXT NOT NULL,
    "customerEmail" TEXT NOT NULL,
    "adminNote" TEXT,
    "metadata" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Refund_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "Refund_stripeRefundId_key" ON "Refund" ("stripeRefundId");
ALTER TABLE "Refund" ADD CONSTRAINT "Refund_adminUserId_fkey"
    FOREIGN KEY ("adminUserId") REFERENCES "User" ("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- The production script: "Search", "UrlAnalysis"."searchId" and some indexes.
CREATE TABLE "Search" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "urlCount" INTEGER NOT NULL,
    "totalReach" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Search_pkey" PRIMARY KEY ("id")
);
ALTER TABLE "UrlAnalysis" ADD COLUMN "searchId" TEXT;
ALTER TABLE "Search" ADD CONSTRAINT "Search_userId_fkey"
    FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UrlAnalysis" ADD CONSTRAINT "UrlAnalysis_searchId_fkey"
    FOREIGN KEY ("searchId") REFERENCES "Search" ("id") ON DELETE SET NULL ON UPDATE CASCADE;
CREATE INDEX "Search_userId_idx" ON "Search" ("userId");
CREATE INDEX "Search_createdAt_idx" ON "Search" ("createdAt");
CREATE INDEX "UrlAnalysis_searchId_idx" ON "UrlAnalysis" ("searchId");
CREATE INDEX "UrlAnalysis_userId_idx" ON "UrlAnalysis" ("userId");
CREATE INDEX "CsvUpload_userId_idx" ON "CsvUpload" ("userId");

-- Prisma Migrate's own table, as it creates it.
CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
);

-- A table the app does not own: the scraper's ads, read by the app's reach queries.
CREATE TABLE ads (
    id             bigserial PRIMARY KEY,
    ad_archive_id  text NOT NULL UNIQUE,
    page_name      text,
    link_url       text,
    eu_total_reach bigint,
    start_date     date,
    scraped_at     timestamptz NOT NULL DEFAULT now(),
    raw            jsonb
);

-- name: record_migrations :exec
-- What `prisma migrate deploy` left: the two migrations, and a failed attempt
-- that was marked rolled back with `prisma migrate resolve --rolled-back`.
INSERT INTO "_prisma_migrations"
    (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
VALUES
    ('5a0e1f4c-6f53-4f3e-9d0b-2c1d7e8a9b01',
     'c9b6a7f5e0d3a1b2c4d6e8f0a2b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0',
     '2025-09-03 05:38:04.512+00', '20250903053802_init', NULL, NULL,
     '2025-09-03 05:38:03.977+00', 1),
    ('0d9c4b2a-8e7f-4a6b-b5c4-d3e2f1a0b9c8',
     '1f3e5d7c9b0a2f4e6d8c0b2a4f6e8d0c2b4a6f8e0d2c4b6a8f0e2d4c6b8a0f2e',
     NULL, '20250904021800_add_refund_model', 'P3018 A migration failed to apply', '2025-09-04 02:31:40.100+00',
     '2025-09-04 02:18:01.250+00', 0),
    ('7b6a5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d',
     '1f3e5d7c9b0a2f4e6d8c0b2a4f6e8d0c2b4a6f8e0d2c4b6a8f0e2d4c6b8a0f2e',
     '2025-09-04 02:33:12.842+00', '20250904021800_add_refund_model', NULL, NULL,
     '2025-09-04 02:33:12.601+00', 1);

-- name: insert_roles :exec
-- The roles the production script and the app's seed create.
INSERT INTO "Role" (id, name, "createdAt", "updatedAt") VALUES
    ('clkj1234567890abcdef', 'admin', '2025-09-03 05:40:00.000', '2025-09-03 05:40:00.000'),
    ('clkj1234567890abcdeg', 'user', '2025-09-03 05:40:00.000', '2025-09-03 05:40:00.000');

-- name: insert_users :exec
-- %(users)s users. Every 4th without a password (OAuth only); e-mails in
-- mixed case and some non-ASCII; the first 3 are admins; times with milliseconds.
INSERT INTO "User" (id, name, email, "emailVerified", image, "passwordHash",
                    "stripeCustomerId", "roleId", "createdAt", "updatedAt")
SELECT 'cm' || substr(md5('user' || i), 1, 23),
       CASE WHEN i %% 7 = 0 THEN NULL
            WHEN i %% 5 = 0 THEN 'Zoë Ångström-' || i
            ELSE 'User ' || i END,
       CASE i %% 4 WHEN 0 THEN 'user' || i || '@example.com'
                  WHEN 1 THEN 'User.' || i || '@Example.COM'
                  WHEN 2 THEN 'MIXED_case' || i || '@gmail.com'
                  ELSE 'jörg' || i || '@Exämple.de' END,
       CASE WHEN i %% 3 = 0 THEN created + interval '5 minutes 0.123 seconds' END,
       CASE WHEN i %% 4 = 0 THEN 'https://lh3.googleusercontent.com/a/' || md5('img' || i) END,
       CASE WHEN i %% 4 <> 0 AND %(with_passwords)s
            THEN (%(hashes)s::text[])[1 + i %% cardinality(%(hashes)s::text[])] END,
       CASE WHEN i %% 2 = 0 THEN 'cus_' || substr(md5('cus' || i), 1, 14) END,
       CASE WHEN i <= 3 THEN 'clkj1234567890abcdef'
            WHEN i %% 10 = 0 THEN NULL
            ELSE 'clkj1234567890abcdeg' END,
       created,
       created + interval '1 day 0.456 seconds'
FROM generate_series(1, %(users)s) AS i,
     LATERAL (SELECT date_trunc('milliseconds', now() AT TIME ZONE 'UTC')
                     - (i || ' hours')::interval - interval '0.789 seconds' AS created) AS t;

-- name: insert_accounts :exec
-- Google (OAuth with every token) for every 3rd user, GitHub for every 5th.
INSERT INTO "Account" (id, "userId", type, provider, "providerAccountId", refresh_token,
                       access_token, expires_at, token_type, scope, id_token, session_state)
SELECT 'cm' || substr(md5('account-google' || u.id), 1, 23), u.id, 'oauth', 'google',
       (100000000000000000000 + n)::text, '1//0g' || md5('refresh' || u.id),
       'ya29.' || md5('access' || u.id), 1760000000 + n, 'Bearer',
       'openid https://www.googleapis.com/auth/userinfo.email', 'eyJhbGciOiJSUzI1NiJ9.' || md5(u.id),
       NULL
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM "User") AS u
WHERE n % 3 = 0
UNION ALL
SELECT 'cm' || substr(md5('account-github' || u.id), 1, 23), u.id, 'oauth', 'github',
       (9000000 + n)::text, NULL, 'gho_' || md5('gh' || u.id), NULL, 'bearer', 'read:user,user:email',
       NULL, NULL
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM "User") AS u
WHERE n % 5 = 0;

-- name: insert_sessions :exec
-- Database sessions for every other user: half live, half expired.
INSERT INTO "Session" (id, "sessionToken", "userId", expires)
SELECT 'cm' || substr(md5('session' || u.id), 1, 23),
       md5('token' || u.id)::uuid::text,
       u.id,
       date_trunc('milliseconds', now() AT TIME ZONE 'UTC')
           + CASE WHEN n % 4 = 0 THEN interval '-3 days' ELSE interval '29 days 0.5 seconds' END
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM "User") AS u
WHERE n % 2 = 0;

-- name: insert_verification_tokens :exec
-- Magic links and password resets: live and expired.
INSERT INTO "VerificationToken" (identifier, token, expires)
SELECT u.email, encode(sha256(convert_to('vt' || u.id, 'UTF8')), 'hex'),
       date_trunc('milliseconds', now() AT TIME ZONE 'UTC')
           + CASE WHEN n % 2 = 0 THEN interval '1 hour' ELSE interval '-1 hour' END
FROM (SELECT id, email, row_number() OVER (ORDER BY id) AS n FROM "User") AS u
WHERE n % 9 = 0;

-- name: insert_csv_uploads :exec
-- One upload for every 10th user: completed, with a few failed, processing
-- and pending; the app's stored name beside the user's (originalName).
INSERT INTO "CsvUpload" (id, "userId", filename, "originalName", "fileSize", status,
                         "totalRows", "validRows", "errorMessage", headers, "createdAt", "updatedAt")
SELECT 'cm' || substr(md5('upload' || u.id), 1, 23), u.id,
       'leads_' || (1757000000000 + n) || '_' || substr(md5('r' || n), 1, 6) || '.csv',
       'leads ' || n || '.csv',
       1000 + n * 37,
       s.status::"CsvUploadStatus",
       CASE WHEN s.status = 'pending' THEN 0 ELSE %(rows_per_upload)s END,
       CASE WHEN s.status = 'pending' THEN 0 ELSE %(rows_per_upload)s END,
       CASE WHEN s.status = 'failed' THEN 'Too many errors in CSV file: Row 3: Invalid data' END,
       ARRAY['name', 'email', 'url', 'note'],
       created, created + interval '2.5 seconds'
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM "User") AS u,
     LATERAL (SELECT CASE WHEN n %% 50 = 0 THEN 'failed' WHEN n %% 70 = 0 THEN 'processing'
                          WHEN n %% 90 = 0 THEN 'pending' ELSE 'completed' END AS status,
                     date_trunc('milliseconds', now() AT TIME ZONE 'UTC') - (n || ' minutes')::interval
                         AS created) AS s
WHERE n %% 10 = 0;

-- name: insert_csv_rows :exec
-- %(rows_per_upload)s rows for each completed or processing upload (a failed
-- one keeps the rows stored before its batch failed); rowIndex from 0, null
-- for an empty cell, text with commas, quotes and non-ASCII letters.
INSERT INTO "CsvRow" (id, "uploadId", "rowIndex", data, "createdAt")
SELECT 'cm' || substr(md5('row' || c.id || i), 1, 23), c.id, i,
       jsonb_build_object(
           'name', CASE WHEN i %% 11 = 0 THEN NULL ELSE 'Lead ' || i || ', "Inc."' END,
           'email', 'lead' || i || '@exämple.com',
           'url', 'https://shop' || i || '.example.com/p?q=1&r=' || i,
           'note', CASE WHEN i %% 3 = 0 THEN 'Ünïcödé ✓ ' || i ELSE 'plain' END),
       c."createdAt"
FROM "CsvUpload" AS c,
     generate_series(0, %(rows_per_upload)s - 1) AS i
WHERE c.status IN ('completed', 'processing')
   OR (c.status = 'failed' AND i < 2);

-- name: insert_upload :exec
-- One upload made by hand (the odd cases).
INSERT INTO "CsvUpload" (id, "userId", filename, "originalName", "fileSize", status,
                         "totalRows", "validRows", "errorMessage", headers, "createdAt", "updatedAt")
VALUES (%(id)s, %(user_id)s, %(filename)s, %(original_name)s, %(file_size)s,
        %(status)s::"CsvUploadStatus", %(total_rows)s, %(total_rows)s, %(error_message)s,
        %(headers)s, %(created_at)s, %(created_at)s);

-- name: insert_row :exec
INSERT INTO "CsvRow" (id, "uploadId", "rowIndex", data, "createdAt")
VALUES (%(id)s, %(upload_id)s, %(row_index)s, %(data)s, %(created_at)s);

-- name: insert_subscriptions :exec
-- One subscription for every other user: trialing rows made at sign-up with
-- no Stripe subscription yet, active, past_due and canceled ones, with usage.
-- Each price's rows carry its limit (the app's PLAN_LIMITS); every 5th row's
-- counter is from before its billing period (the app had not reset it yet).
-- Every 40th user also has an older, canceled subscription (another customer).
INSERT INTO "Subscription" (id, "userId", "stripeCustomerId", "stripeSubscriptionId", status,
                            "priceId", quantity, "currentPeriodStart", "currentPeriodEnd",
                            "cancelAtPeriodEnd", "canceledAt", "monthlyLimit", "usedThisMonth",
                            "lastUsageReset", "trialLimit", "trialUsed", "createdAt", "updatedAt")
SELECT 'cm' || substr(md5('sub' || u.id), 1, 23), u.id,
       coalesce(u."stripeCustomerId", 'cus_' || substr(md5('subcus' || u.id), 1, 14)),
       CASE WHEN s.status = 'trialing' AND n % 16 = 1 THEN NULL
            ELSE 'sub_' || substr(md5('subid' || u.id), 1, 24) END,
       s.status::"SubscriptionStatus",
       (ARRAY['price_1S2Sa1BDgh9JKNMfPQca2Ozk', 'price_1S2Sa2BDgh9JKNMfXr6YEVMx',
              'price_1S2Sa3BDgh9JKNMfqNoy03Sg'])[1 + n % 3],
       1, t.now - interval '10 days', t.now + interval '20 days',
       n % 13 = 0, CASE WHEN s.status = 'canceled' THEN t.now - interval '1 day' END,
       (ARRAY[500, 1000, 2500])[1 + n % 3], (n * 7) % 400,
       t.now - CASE WHEN n % 5 = 0 THEN interval '40 days' ELSE interval '9 days' END,
       10, CASE WHEN s.status = 'trialing' THEN n % 11 ELSE 10 END,
       t.now - interval '40 days', t.now - interval '1 day'
FROM (SELECT id, "stripeCustomerId", row_number() OVER (ORDER BY id) AS n FROM "User") AS u,
     LATERAL (SELECT CASE n % 16 WHEN 1 THEN 'trialing' WHEN 9 THEN 'trialing' WHEN 5 THEN 'canceled'
                                  WHEN 13 THEN 'past_due' ELSE 'active' END AS status) AS s,
     LATERAL (SELECT date_trunc('milliseconds', now() AT TIME ZONE 'UTC') AS now) AS t
WHERE n % 2 = 1
UNION ALL
SELECT 'cm' || substr(md5('oldsub' || u.id), 1, 23), u.id,
       'cus_' || substr(md5('oldcus' || u.id), 1, 14), 'sub_' || substr(md5('oldsubid' || u.id), 1, 24),
       'canceled', 'price_1S2Sa1BDgh9JKNMfPQca2Ozk', 1,
       t.now - interval '70 days', t.now - interval '40 days', false, t.now - interval '40 days',
       500, 321, t.now - interval '70 days', 10, 10,
       t.now - interval '100 days', t.now - interval '40 days'
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM "User") AS u,
     LATERAL (SELECT date_trunc('milliseconds', now() AT TIME ZONE 'UTC') AS now) AS t
WHERE n % 40 = 1;

-- name: insert_searches_and_analyses :exec
-- Searches of 1-3 URLs for every 6th user, each URL analysed once per user,
-- completed with the app's results object (reach, chart data) or still pending.
-- URLs as the app's normalizeUrl stored them: no scheme, "www." or query (the
-- first of each user with the host in capitals, as the app left it).
WITH searches AS (
    INSERT INTO "Search" (id, "userId", status, "urlCount", "totalReach", "createdAt", "updatedAt")
    SELECT 'cm' || substr(md5('search' || u.id), 1, 23), u.id,
           CASE WHEN n % 12 = 0 THEN 'pending' ELSE 'completed' END, 1 + n % 3,
           CASE WHEN n % 12 = 0 THEN 0 ELSE 1000 * n END,
           now() AT TIME ZONE 'UTC' - interval '3 days', now() AT TIME ZONE 'UTC' - interval '3 days'
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM "User") AS u
    WHERE n % 6 = 0
    RETURNING id, "userId", status, "urlCount", "totalReach", "createdAt"
)
INSERT INTO "UrlAnalysis" (id, "userId", url, status, results, "createdAt", "updatedAt", "searchId")
SELECT 'cm' || substr(md5('analysis' || s.id || k), 1, 23), s."userId",
       CASE WHEN k = 1 THEN 'Shop' || (1000 + k) || '.Example.com/collections/' || substr(s.id, 3, 6)
            ELSE 'shop' || (1000 + k) || '.example.com/collections/' || substr(s.id, 3, 6) END,
       s.status,
       CASE WHEN s.status = 'completed' THEN jsonb_build_object(
           'url', 'shop' || (1000 + k) || '.example.com/collections/' || substr(s.id, 3, 6),
           'totalReach', s."totalReach" / s."urlCount", 'adCount', k + 1, 'avgReachPerDay', 40,
           'totalDays', 2, 'firstDay', '2025-09-01', 'lastDay', '2025-09-02',
           'reachCategory', 'Medium', 'reachColor', '#f59e0b',
           'chartData', jsonb_build_array(
               jsonb_build_object('date', '2025-09-01', 'reach', 20, 'adCount', 1),
               jsonb_build_object('date', '2025-09-02', 'reach', 60, 'adCount', k + 1)),
           'analyzed_at', '2025-09-05T10:11:12.345Z') END,
       s."createdAt", s."createdAt", s.id
FROM searches AS s, generate_series(1, s."urlCount") AS k;

-- name: insert_rerun_searches :exec
-- For every 4th user with a completed search, a later one-URL search that ran
-- the first URL again: the app moved that analysis to the new search (its
-- searchId), so the old search names one analysis fewer than its urlCount.
WITH reruns AS (
    INSERT INTO "Search" (id, "userId", status, "urlCount", "totalReach", "createdAt", "updatedAt")
    SELECT 'cm' || substr(md5('rerun' || s.id), 1, 23), s."userId", 'completed', 1, 777,
           now() AT TIME ZONE 'UTC' - interval '1 day', now() AT TIME ZONE 'UTC' - interval '1 day'
    FROM (SELECT id, "userId", row_number() OVER (ORDER BY id) AS n
          FROM "Search" WHERE status = 'completed') AS s
    WHERE n % 4 = 0
    RETURNING id, "userId", "createdAt"
)
UPDATE "UrlAnalysis" AS a
SET "searchId" = r.id, "updatedAt" = r."createdAt",
    results = a.results || '{"totalReach": 777}'
FROM reruns AS r
WHERE a."userId" = r."userId" AND a.url LIKE 'Shop1001.%';

-- name: insert_refunds :exec
-- Refunds issued by the first admin.
INSERT INTO "Refund" (id, "stripeRefundId", "stripeChargeId", "stripePaymentIntentId", amount,
                      currency, reason, status, "adminUserId", "customerEmail", "adminNote",
                      metadata, "createdAt", "updatedAt")
SELECT 'cm' || substr(md5('refund' || i), 1, 23), 're_' || substr(md5('re' || i), 1, 24),
       'ch_' || substr(md5('ch' || i), 1, 24), 'pi_' || substr(md5('pi' || i), 1, 24),
       (ARRAY[4900, 9900, 24900])[1 + i %% 3], 'usd',
       (ARRAY['requested_by_customer', 'duplicate', 'fraudulent'])[1 + i %% 3],
       CASE WHEN i %% 4 = 0 THEN 'pending' ELSE 'succeeded' END,
       (SELECT id FROM "User" ORDER BY "createdAt" DESC LIMIT 1),
       'customer' || i || '@example.com', CASE WHEN i %% 2 = 0 THEN 'Goodwill, see ticket #' || i END,
       jsonb_build_object('refunded_by', 'admin', 'ticket', i),
       now() AT TIME ZONE 'UTC' - interval '2 days', now() AT TIME ZONE 'UTC' - interval '2 days'
FROM generate_series(1, %(refunds)s) AS i;

-- name: insert_ads :exec
INSERT INTO ads (ad_archive_id, page_name, link_url, eu_total_reach, start_date, raw)
SELECT (1000 + i)::text, 'Shop ' || i, 'https://shop' || i || '.example.com',
       i * 1000, date '2025-08-01' + i % 30, jsonb_build_object('i', i)
FROM generate_series(1, 200) AS i;

-- name: insert_user :exec
-- One user made by hand (the odd cases).
INSERT INTO "User" (id, name, email, "createdAt", "updatedAt", "roleId")
VALUES (%(id)s, %(name)s, %(email)s, %(created_at)s, %(created_at)s, %(role_id)s);

-- name: insert_role :exec
INSERT INTO "Role" (id, name, "createdAt", "updatedAt")
VALUES (%(id)s, %(name)s, %(created_at)s, %(created_at)s);

-- name: drop_foreign_key :exec
-- As in production before its script ran: a reference nothing checks.
ALTER TABLE {table} DROP CONSTRAINT {constraint};

-- name: set_password_hash :exec
UPDATE "User" SET "passwordHash" = %(hash)s WHERE id = %(id)s;

-- name: insert_subscription :exec
-- One subscription made by hand (the odd cases); a month-long period from %(start)s.
INSERT INTO "Subscription" (id, "userId", "stripeCustomerId", "stripeSubscriptionId", status,
                            "priceId", "currentPeriodStart", "currentPeriodEnd", "usedThisMonth",
                            "lastUsageReset", "trialUsed", "createdAt", "updatedAt")
VALUES (%(id)s, %(user_id)s, %(customer_id)s, %(stripe_id)s, %(status)s::"SubscriptionStatus",
        'price_1S2Sa1BDgh9JKNMfPQca2Ozk', %(start)s, %(start)s + interval '7 days', %(used)s,
        %(start)s, %(trial_used)s, %(start)s, %(start)s);

-- name: insert_search :exec
INSERT INTO "Search" (id, "userId", status, "urlCount", "totalReach", "createdAt", "updatedAt")
VALUES (%(id)s, %(user_id)s, %(status)s, %(url_count)s, 0, %(created_at)s, %(created_at)s);

-- name: insert_analysis :exec
INSERT INTO "UrlAnalysis" (id, "userId", url, status, results, "createdAt", "updatedAt", "searchId")
VALUES (%(id)s, %(user_id)s, %(url)s, %(status)s, %(results)s, %(created_at)s,
        %(created_at)s + interval '1 minute', %(search_id)s);

-- name: insert_refund :exec
INSERT INTO "Refund" (id, "stripeRefundId", "stripeChargeId", "stripePaymentIntentId", amount,
                      currency, reason, status, "adminUserId", "customerEmail", metadata,
                      "createdAt", "updatedAt")
VALUES (%(id)s, 're_' || %(id)s, 'ch_' || %(id)s, '', %(amount)s, %(currency)s,
        'requested_by_customer', %(status)s, %(admin_id)s, 'someone@example.com', '{}',
        %(created_at)s, %(created_at)s);
