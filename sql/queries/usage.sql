-- Usage allowance: one statement per charge, the ledger beside the counter
-- (trampolin.usage).
--
-- usage_window(user, now()) (sql/migrations/0009_usage.sql) says whose
-- allowance a user has: unlimited for admins, the plan's trial or monthly
-- limit for a subscriber, 0 without a subscription that grants access; and
-- which period (usage_periods row) is current. A new period needs no reset
-- job: its first charge creates its row (the lazy reset), in the statement
-- that charges.
--
-- Every statement that moves a counter writes the ledger row in the same
-- statement, so used = sum(usage_ledger.amount) for every period row.

-- name: consume :one
-- Charge %(n)s units to the user's current period if that many remain, and
-- record it, in one statement. ON CONFLICT DO UPDATE evaluates its WHERE on
-- the newest version of the period row, after waiting for a concurrent
-- charge to commit, so concurrent charges never overshoot the limit and never
-- lose one another. The limit is carried in the row proposed for insertion
-- (excluded.usage_limit; NULL: unlimited), so that the WHERE needs no
-- subquery. A %(search_id)s that is not one of the user's searches refuses
-- the charge (search_ok false) instead of failing the ledger's foreign key:
-- the statement raises no error of its own, so it needs no savepoint in the
-- caller's transaction. Returns the window (user_id NULL: unknown user),
-- search_ok, granted, and used: the counter after the charge, or as this
-- statement saw it if refused.
WITH w AS (
    SELECT w.*,
           %(search_id)s::uuid IS NULL OR EXISTS (
               SELECT 1 FROM searches
               WHERE id = %(search_id)s::uuid AND user_id = w.user_id) AS search_ok
    FROM usage_window(%(user_id)s, now()) AS w
),
charged AS (
    INSERT INTO usage_periods AS p (user_id, period_start, period_end, trial, usage_limit, used)
    SELECT w.user_id, w.period_start, w.period_end, w.trial, w.usage_limit, %(n)s
    FROM w
    WHERE w.search_ok AND w.period_start IS NOT NULL
      AND (w.usage_limit IS NULL OR %(n)s <= w.usage_limit)
    ON CONFLICT (user_id, period_start) DO UPDATE
    SET used = p.used + excluded.used,
        period_end = excluded.period_end,
        usage_limit = excluded.usage_limit
    WHERE excluded.usage_limit IS NULL OR p.used + excluded.used <= excluded.usage_limit
    RETURNING p.user_id, p.period_start, p.used
),
logged AS (
    INSERT INTO usage_ledger (user_id, period_start, amount, reason, search_id)
    SELECT user_id, period_start, %(n)s, %(reason)s, %(search_id)s FROM charged
)
SELECT w.user_id, w.unlimited, w.trial, w.usage_limit, w.period_start, w.period_end,
       w.search_ok, charged.used IS NOT NULL AS granted,
       coalesce(charged.used, (
           SELECT used FROM usage_periods AS p
           WHERE p.user_id = w.user_id AND p.period_start = w.period_start), 0) AS used
FROM (VALUES (1)) AS one (x)
LEFT JOIN w ON true
LEFT JOIN charged ON true;

-- name: give_back :one
-- Give up to %(n)s units back to a period of the user: %(period_start)s (the
-- period an analysis was charged in), or the current one when it is NULL.
-- The counter never goes below 0: what is given back is least(n, used), as
-- the locked, newest row says (the FOR UPDATE in "target" waits for a
-- concurrent charge and reads its result; the UPDATE then sees that version
-- too), and exactly that is recorded. Returns the current window and
-- "given"; "used" is the current period's counter afterwards.
WITH w AS (
    SELECT * FROM usage_window(%(user_id)s, now())
),
target AS (
    SELECT p.user_id, p.period_start, p.used
    FROM usage_periods AS p
    WHERE p.user_id = %(user_id)s
      AND p.period_start = coalesce(%(period_start)s::timestamptz, (SELECT period_start FROM w))
    FOR UPDATE
),
given AS (
    UPDATE usage_periods AS p
    SET used = p.used - least(%(n)s, t.used)
    FROM target AS t
    WHERE p.user_id = t.user_id AND p.period_start = t.period_start AND t.used > 0
    RETURNING p.period_start, p.used, least(%(n)s, t.used) AS amount
),
logged AS (
    INSERT INTO usage_ledger (user_id, period_start, amount, reason, search_id, analysis_id)
    SELECT %(user_id)s, period_start, -amount, %(reason)s, %(search_id)s, %(analysis_id)s
    FROM given
)
SELECT w.user_id, w.unlimited, w.trial, w.usage_limit, w.period_start, w.period_end,
       coalesce(given.amount, 0) AS given,
       CASE WHEN given.period_start = w.period_start THEN given.used
            ELSE coalesce((
                SELECT used FROM usage_periods AS p
                WHERE p.user_id = w.user_id AND p.period_start = w.period_start), 0)
       END AS used
FROM (VALUES (1)) AS one (x)
LEFT JOIN w ON true
LEFT JOIN given ON true;

-- name: allowance :one
-- The user's window and the current period's counter; no row: unknown user.
SELECT w.user_id, w.unlimited, w.trial, w.usage_limit, w.period_start, w.period_end,
       coalesce(p.used, 0) AS used
FROM usage_window(%(user_id)s, now()) AS w
LEFT JOIN usage_periods AS p ON p.user_id = w.user_id AND p.period_start = w.period_start;

-- name: set_plan_limit :one
-- Create or change a plan. A new plan's trial limit, unless given, is the
-- default plan's; an existing plan keeps its trial limit unless one is given.
INSERT INTO plans AS p (price_id, monthly_limit, trial_limit)
VALUES (%(price_id)s, %(monthly_limit)s, coalesce(
    %(trial_limit)s::integer,
    (SELECT trial_limit FROM plans WHERE price_id = 'default'),
    10))
ON CONFLICT (price_id) DO UPDATE
SET monthly_limit = excluded.monthly_limit,
    trial_limit = coalesce(%(trial_limit)s::integer, p.trial_limit)
RETURNING p.price_id, p.name, p.monthly_limit, p.trial_limit, p.updated_at;

-- name: plans :many
-- Every plan, the default first.
SELECT price_id, name, monthly_limit, trial_limit, updated_at
FROM plans
ORDER BY price_id <> 'default', price_id;

-- name: extend_trial :one
-- Push back the end of the user's trial by %(days)s days, counted from its
-- end, or from now if it has ended (an admin reviving a trial). The trial is
-- the user's trialing subscription, one linked to Stripe first. No row: the
-- user has none.
UPDATE subscriptions AS s
SET trial_end = greatest(coalesce(s.trial_end, now()), now()) + make_interval(days => %(days)s)
WHERE s.id = (
    SELECT id FROM subscriptions
    WHERE user_id = %(user_id)s AND status = 'trialing'
    ORDER BY stripe_subscription_id IS NULL, trial_end DESC NULLS LAST, created_at DESC, id
    LIMIT 1
)
RETURNING s.id, s.stripe_subscription_id, s.trial_end;
