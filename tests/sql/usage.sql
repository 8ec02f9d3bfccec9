-- Test-only queries for tests/test_usage.py, test_analyses.py and test_refunds.py.

-- name: insert_subscription :one
-- A subscription as a webhook (or, without a Stripe id, a sign-up) would leave it.
INSERT INTO subscriptions (
    stripe_subscription_id, user_id, stripe_customer_id, status, price_id,
    current_period_start, current_period_end, trial_start, trial_end)
VALUES (%(stripe_subscription_id)s, %(user_id)s, %(customer_id)s, %(status)s, %(price_id)s,
        %(period_start)s, %(period_end)s, %(trial_start)s, %(trial_end)s)
RETURNING id;

-- name: set_period :exec
-- A renewal: the subscription's billing period moves on.
UPDATE subscriptions
SET current_period_start = %(period_start)s, current_period_end = %(period_end)s
WHERE id = %(id)s;

-- name: set_status :exec
UPDATE subscriptions SET status = %(status)s WHERE id = %(id)s;

-- name: link_trial :exec
-- The Stripe subscription of a sign-up trial appears (what phase 2's webhook does).
UPDATE subscriptions SET stripe_subscription_id = %(stripe_subscription_id)s WHERE id = %(id)s;

-- name: trial_end :one
SELECT trial_end FROM subscriptions WHERE id = %(id)s;

-- name: unbalanced :many
-- Periods whose counter differs from their ledger: always none.
SELECT * FROM usage_period_balances WHERE used <> ledger_total;

-- name: periods :many
SELECT period_start, period_end, trial, usage_limit, used
FROM usage_periods WHERE user_id = %(user_id)s ORDER BY period_start;

-- name: ledger :many
SELECT period_start, amount, reason, search_id, analysis_id
FROM usage_ledger WHERE user_id = %(user_id)s ORDER BY id;

-- name: ledger_sums :one
-- Charges and give-backs of a user, over all periods.
SELECT coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS charged,
       coalesce(-sum(amount) FILTER (WHERE amount < 0), 0) AS given_back,
       (SELECT coalesce(sum(used), 0) FROM usage_periods WHERE user_id = %(user_id)s) AS used
FROM usage_ledger WHERE user_id = %(user_id)s;

-- name: paid_period :one
SELECT period_start, period_end FROM usage_paid_period(%(start)s, %(end)s, %(at)s);

-- name: months :one
SELECT usage_add_months(%(start)s, %(n)s) AS added,
       usage_months_between(%(start)s, %(at)s) AS between;

-- name: analyses_of :many
SELECT id, url, status, charged_period_start FROM url_analyses
WHERE user_id = %(user_id)s ORDER BY url;

-- name: age_claim :exec
-- Make a claim look old (its worker died long ago).
UPDATE url_analyses SET claimed_at = claimed_at - %(by)s::interval WHERE id = %(id)s;

-- name: delete_user :exec
DELETE FROM users WHERE id = %(id)s;

-- name: subscription_of :one
SELECT id, current_period_start, current_period_end FROM subscriptions
WHERE user_id = %(user_id)s ORDER BY created_at DESC LIMIT 1;

-- name: email_of :one
SELECT email FROM users WHERE id = %(id)s;

-- name: insert_refund_from_event :exec
-- A refund row as a Stripe event (phase 2) would leave it, before any admin recorded it.
INSERT INTO refunds (stripe_refund_id, amount, currency, status, last_event_id, last_event_created)
VALUES (%(stripe_refund_id)s, %(amount)s, 'usd', %(status)s, 'evt_test', now());

-- name: refund_count :one
SELECT count(*) AS n FROM refunds WHERE stripe_refund_id = %(stripe_refund_id)s;
