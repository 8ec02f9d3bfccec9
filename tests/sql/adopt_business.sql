-- Read-only checks for tests/test_adopt_business.py: the archived app rows an
-- adopted database is compared with (snake_case names, times as stored).

-- name: archived_password_users :many
-- One user per distinct password hash, and how many users hold it.
SELECT DISTINCT ON ("passwordHash") id, email, "passwordHash" AS hash,
       count(*) OVER (PARTITION BY "passwordHash") AS holders
FROM prisma_archive."User"
WHERE "passwordHash" IS NOT NULL
ORDER BY "passwordHash", id;

-- name: changed_password_hashes :one
-- Adopted users whose hash is not the app's, character for character.
SELECT count(*) AS changed
FROM prisma_archive."User" AS p
JOIN users AS u ON u.legacy_id = p.id
WHERE u.password_hash IS DISTINCT FROM p."passwordHash";

-- name: archived_subscriptions :many
-- Every app subscription, with its user's role and how many subscriptions the user has.
SELECT s.id, s."userId" AS user_id, s."stripeCustomerId" AS stripe_customer_id,
       s."stripeSubscriptionId" AS stripe_subscription_id, s.status::text AS status,
       s."priceId" AS price_id, s.quantity, s."currentPeriodStart" AS current_period_start,
       s."currentPeriodEnd" AS current_period_end, s."cancelAtPeriodEnd" AS cancel_at_period_end,
       s."canceledAt" AS canceled_at, s."monthlyLimit" AS monthly_limit,
       s."usedThisMonth" AS used_this_month, s."lastUsageReset" AS last_usage_reset,
       s."trialLimit" AS trial_limit, s."trialUsed" AS trial_used,
       r.name AS role, count(*) OVER (PARTITION BY s."userId") AS user_subscriptions
FROM prisma_archive."Subscription" AS s
JOIN prisma_archive."User" AS u ON u.id = s."userId"
LEFT JOIN prisma_archive."Role" AS r ON r.id = u."roleId"
ORDER BY s.id;

-- name: unbalanced_periods :many
-- A DBA's check (docs/usage.md): periods whose counter the ledger does not explain.
SELECT * FROM usage_period_balances WHERE used <> ledger_total;

-- name: adopted_ledger :one
SELECT count(*) AS entries, count(*) FILTER (WHERE reason LIKE 'adopted: %%') AS adopted,
       (SELECT count(*) FROM usage_periods) AS periods
FROM usage_ledger;

-- name: archived_analyses :many
SELECT id, "userId" AS user_id, url, status, results, "createdAt" AS created_at,
       "updatedAt" AS updated_at, "searchId" AS search_id
FROM prisma_archive."UrlAnalysis"
ORDER BY id;

-- name: archived_searches :many
-- Every search with the analyses that name it, in the order they were made.
SELECT s.id, s."userId" AS user_id, s.status, s."urlCount" AS url_count,
       s."totalReach" AS total_reach, s."createdAt" AS created_at, s."updatedAt" AS updated_at,
       coalesce(array_agg(a.id ORDER BY a."createdAt", a.id) FILTER (WHERE a.id IS NOT NULL),
                '{}') AS analysis_ids,
       coalesce(array_agg(a.status ORDER BY a."createdAt", a.id) FILTER (WHERE a.id IS NOT NULL),
                '{}') AS analysis_statuses
FROM prisma_archive."Search" AS s
LEFT JOIN prisma_archive."UrlAnalysis" AS a ON a."searchId" = s.id
GROUP BY s.id
ORDER BY s.id;

-- name: archived_refunds :many
SELECT r.id, r."stripeRefundId" AS stripe_refund_id, r."stripeChargeId" AS stripe_charge_id,
       r."stripePaymentIntentId" AS stripe_payment_intent_id, r.amount, r.currency, r.reason,
       r.status, r."adminUserId" AS admin_user_id, u.email AS admin_email,
       r."customerEmail" AS customer_email, r."adminNote" AS note, r.metadata,
       r."createdAt" AS created_at, r."updatedAt" AS updated_at
FROM prisma_archive."Refund" AS r
LEFT JOIN prisma_archive."User" AS u ON u.id = r."adminUserId"
ORDER BY r.id;

-- name: archived_uploads :many
SELECT id, "userId" AS user_id FROM prisma_archive."CsvUpload" ORDER BY id;

-- name: user_without_billing :one
-- An app user with no subscription and no Stripe customer.
SELECT u.id FROM prisma_archive."User" AS u
WHERE u."stripeCustomerId" IS NULL AND u.email IS NOT NULL
  AND NOT EXISTS (SELECT FROM prisma_archive."Subscription" AS s WHERE s."userId" = u.id)
ORDER BY u.id
LIMIT 1;

-- name: archived_user :one
-- The n-th app user, by id (the fixture's first user holds the odd rows).
SELECT id, email FROM prisma_archive."User" ORDER BY id OFFSET %(n)s - 1 LIMIT 1;
