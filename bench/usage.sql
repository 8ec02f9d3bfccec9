-- Bench-only SQL for bench/usage.py.

-- name: create_subscribers :many
-- %(count)s users, each with an active monthly subscription of price_bench.
WITH made AS (
    INSERT INTO users (email)
    SELECT format('bench%%s-%%s@bench.example', %(tag)s::text, n)
    FROM generate_series(1, %(count)s) AS n
    RETURNING id
)
INSERT INTO subscriptions (
    stripe_subscription_id, user_id, stripe_customer_id, status, price_id,
    current_period_start, current_period_end)
SELECT 'sub_bench_' || id, id, 'cus_bench_' || id, 'active', 'price_bench',
       now() - interval '1 day', now() + interval '29 days'
FROM made
RETURNING user_id;

-- name: bare_increment :exec
-- The baseline: what one would write by hand, a single-row increment of the counter.
UPDATE usage_periods SET used = used + 1
WHERE user_id = %(user_id)s AND period_start = %(period_start)s;

-- name: async_commit :exec
-- This session's commits return before the WAL reaches disk.
SET synchronous_commit = off;
