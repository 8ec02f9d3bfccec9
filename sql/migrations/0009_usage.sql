-- Usage allowance: plans, the counter per user and period, the usage ledger;
-- subscriptions that exist before Stripe's (a trial started at sign-up).
--
-- The app kept the allowance on its Subscription row and raced on it: it read
-- usedThisMonth, ran slow work, then wrote old + n. Here a charge is one
-- statement (sql/queries/usage.sql, consume): the period row is created or
-- incremented with the limit checked on the newest row version, and the
-- ledger row is written by the same statement. So for every period row
-- used = the sum of its ledger amounts, which usage_period_balances shows.
--
-- subscriptions gets a uuid primary key: a row made at sign-up has no Stripe
-- subscription id yet (it is linked when Stripe's subscription appears).
-- stripe_subscription_id stays unique, so ON CONFLICT (stripe_subscription_id)
-- keeps working; a user has at most one unlinked row.

-- Subscriptions --------------------------------------------------------------

ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_pkey;
ALTER TABLE subscriptions ALTER COLUMN stripe_subscription_id DROP NOT NULL;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_stripe_subscription_id_key
    UNIQUE (stripe_subscription_id);
ALTER TABLE subscriptions ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX subscriptions_unlinked_user_key ON subscriptions (user_id)
    WHERE stripe_subscription_id IS NULL;

-- A row that no event has produced (sign-up, adoption) sorts before every event.
ALTER TABLE subscriptions ALTER COLUMN last_event_id SET DEFAULT '';
ALTER TABLE subscriptions ALTER COLUMN last_event_created SET DEFAULT '-infinity';

COMMENT ON COLUMN subscriptions.id IS 'Row id; a row exists before its Stripe subscription does.';
COMMENT ON COLUMN subscriptions.stripe_subscription_id IS
    'Stripe subscription (sub_...), unique; NULL for a trial started at sign-up, until linked (one such row per user).';
COMMENT ON COLUMN subscriptions.last_event_id IS
    'Stripe event (evt_...) that produced this state; '''' when none has (a row made at sign-up).';
COMMENT ON COLUMN subscriptions.last_event_created IS
    'Creation time of that event (-infinity when none); older events are stale and ignored.';

-- Plans ----------------------------------------------------------------------

CREATE TABLE plans (
    price_id      text PRIMARY KEY,
    name          text,
    monthly_limit integer NOT NULL,
    trial_limit   integer NOT NULL DEFAULT 10,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT plans_price_id_check CHECK (price_id ~ '^[^[:space:]]{1,255}$'),
    CONSTRAINT plans_monthly_limit_check CHECK (monthly_limit >= 0),
    CONSTRAINT plans_trial_limit_check CHECK (trial_limit >= 0)
);

COMMENT ON TABLE plans IS 'Allowance per Stripe price; the row ''default'' applies to any other price.';
COMMENT ON COLUMN plans.monthly_limit IS 'Units a paying subscriber may use per month of the billing period.';
COMMENT ON COLUMN plans.trial_limit IS 'Units a subscriber may use during the whole trial.';

CREATE TRIGGER plans_set_updated_at BEFORE UPDATE ON plans
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The app's limits (src/app/api/analyze/route.ts): 500 for an unknown price,
-- 10 analyses during a trial.
INSERT INTO plans (price_id, name, monthly_limit, trial_limit) VALUES
    ('default', 'Any price without a row of its own', 500, 10);

-- Periods and the ledger -----------------------------------------------------

CREATE TABLE usage_periods (
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    period_end   timestamptz,
    trial        boolean NOT NULL DEFAULT false,
    usage_limit  integer,
    used         integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, period_start),
    CONSTRAINT usage_periods_used_check CHECK (used >= 0),
    CONSTRAINT usage_periods_usage_limit_check CHECK (usage_limit >= 0),
    CONSTRAINT usage_periods_end_check CHECK (period_end > period_start)
);

COMMENT ON TABLE usage_periods IS
    'The usage counter of one user in one period; a new period starts a new row (the lazy reset).';
COMMENT ON COLUMN usage_periods.period_start IS
    'Start of the period: a month of the billing period, the trial''s start, or (admins) the UTC month.';
COMMENT ON COLUMN usage_periods.trial IS 'Whether this is a trial''s allowance (the plan''s trial_limit).';
COMMENT ON COLUMN usage_periods.usage_limit IS 'The limit in force at the last charge; NULL: unlimited (an admin).';
COMMENT ON COLUMN usage_periods.used IS 'Units used: always the sum of this period''s usage_ledger amounts.';

CREATE TRIGGER usage_periods_set_updated_at BEFORE UPDATE ON usage_periods
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE usage_ledger (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      uuid NOT NULL,
    period_start timestamptz NOT NULL,
    amount       integer NOT NULL,
    reason       text NOT NULL,
    search_id    uuid,
    analysis_id  uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (user_id, period_start) REFERENCES usage_periods (user_id, period_start)
        ON DELETE CASCADE,
    CONSTRAINT usage_ledger_amount_check CHECK (amount <> 0),
    CONSTRAINT usage_ledger_reason_check CHECK (reason <> '')
);

CREATE INDEX usage_ledger_period_idx ON usage_ledger (user_id, period_start);

COMMENT ON TABLE usage_ledger IS 'Every charge (amount > 0) and give-back (amount < 0), never updated.';
COMMENT ON COLUMN usage_ledger.period_start IS 'The period (usage_periods row) whose counter the row moved.';
COMMENT ON COLUMN usage_ledger.search_id IS 'The search the units were reserved for, if any.';
COMMENT ON COLUMN usage_ledger.analysis_id IS 'The analysis whose unit was given back, if any.';

CREATE VIEW usage_period_balances AS
SELECT p.user_id, p.period_start, p.period_end, p.trial, p.usage_limit, p.used,
       coalesce(l.total, 0) AS ledger_total, coalesce(l.entries, 0) AS ledger_entries
FROM usage_periods AS p
LEFT JOIN (
    SELECT user_id, period_start, sum(amount) AS total, count(*) AS entries
    FROM usage_ledger
    GROUP BY user_id, period_start
) AS l USING (user_id, period_start);

COMMENT ON VIEW usage_period_balances IS
    'Each period''s counter beside its ledger: used = ledger_total always (check: WHERE used <> ledger_total).';

-- Period arithmetic (trampolin/usage_periods.py states the same rules) --------

CREATE FUNCTION usage_add_months(ts timestamptz, months integer) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ((ts AT TIME ZONE 'UTC') + make_interval(months => months)) AT TIME ZONE 'UTC';

COMMENT ON FUNCTION usage_add_months(timestamptz, integer) IS
    'ts plus whole calendar months in UTC; the day is clamped to the month''s length (Jan 31 + 1 = Feb 28).';

CREATE FUNCTION usage_months_between(from_ts timestamptz, to_ts timestamptz) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    f timestamp := from_ts AT TIME ZONE 'UTC';
    t timestamp := to_ts AT TIME ZONE 'UTC';
    months integer := ((extract(year FROM t) - extract(year FROM f)) * 12
                       + extract(month FROM t) - extract(month FROM f))::integer;
BEGIN
    IF usage_add_months(from_ts, months) > to_ts THEN
        RETURN months - 1;
    END IF;
    RETURN months;
END;
$$;

COMMENT ON FUNCTION usage_months_between(timestamptz, timestamptz) IS
    'Whole months from from_ts to to_ts, counted with usage_add_months (rounded down).';

CREATE FUNCTION usage_paid_period(
    billing_start timestamptz, billing_end timestamptz, at timestamptz,
    OUT period_start timestamptz, OUT period_end timestamptz)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    last_month integer;
    n integer;
BEGIN
    IF billing_end <= billing_start THEN
        billing_end := NULL;  -- no usable end: count months from the start
    END IF;
    IF billing_end IS NOT NULL AND at < billing_end THEN
        -- A month of the billing period; the last one runs to its end.
        last_month := greatest(1, usage_months_between(billing_start, billing_end)) - 1;
        n := least(greatest(0, usage_months_between(billing_start, at)), last_month);
        period_start := usage_add_months(billing_start, n);
        period_end := CASE WHEN n = last_month THEN billing_end
                           ELSE usage_add_months(billing_start, n + 1) END;
    ELSE
        -- Past the end (the renewal has not arrived yet) or no end: months from it.
        billing_start := coalesce(billing_end, billing_start);
        n := greatest(0, usage_months_between(billing_start, at));
        period_start := usage_add_months(billing_start, n);
        period_end := usage_add_months(billing_start, n + 1);
    END IF;
END;
$$;

COMMENT ON FUNCTION usage_paid_period(timestamptz, timestamptz, timestamptz) IS
    'The period of a paid subscription billed from billing_start to billing_end that holds at.';

-- Whose allowance, which period, which limit ---------------------------------

CREATE FUNCTION usage_window(p_user_id uuid, p_at timestamptz)
RETURNS TABLE (
    user_id uuid, unlimited boolean, trial boolean, usage_limit integer,
    period_start timestamptz, period_end timestamptz, subscription_id uuid)
LANGUAGE sql STABLE AS $$
    SELECT u.id,
           admin.yes,
           coalesce(s.status = 'trialing', false),
           CASE WHEN admin.yes THEN NULL
                WHEN s.id IS NULL THEN 0
                WHEN s.status = 'trialing' THEN coalesce(p.trial_limit, d.trial_limit, 0)
                ELSE coalesce(p.monthly_limit, d.monthly_limit, 0) END,
           CASE WHEN admin.yes THEN admin.month_start
                WHEN s.status = 'trialing'
                    THEN coalesce(s.trial_start, s.current_period_start, s.created_at)
                ELSE paid.period_start END,
           CASE WHEN admin.yes THEN usage_add_months(admin.month_start, 1)
                WHEN s.status = 'trialing' THEN coalesce(s.trial_end, s.current_period_end)
                ELSE paid.period_end END,
           s.id
    FROM users AS u
    LEFT JOIN roles AS r ON r.id = u.role_id
    CROSS JOIN LATERAL (
        SELECT r.name IS NOT DISTINCT FROM 'admin',
               date_trunc('month', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    ) AS admin (yes, month_start)
    -- The subscription that grants access: linked to Stripe first, then the
    -- one whose period ends last. A trial started at sign-up (no Stripe id
    -- yet) grants only until its trial_end.
    LEFT JOIN LATERAL (
        SELECT sub.id, sub.status, sub.price_id, sub.created_at, sub.trial_start,
               sub.trial_end, sub.current_period_start, sub.current_period_end
        FROM subscriptions AS sub
        WHERE sub.user_id = u.id
          AND sub.status IN ('active', 'trialing', 'past_due')
          AND (sub.stripe_subscription_id IS NOT NULL OR sub.trial_end IS NULL
               OR sub.trial_end > p_at)
        ORDER BY sub.stripe_subscription_id IS NULL, sub.current_period_end DESC NULLS LAST,
                 sub.created_at DESC, sub.id
        LIMIT 1
    ) AS s ON NOT admin.yes
    LEFT JOIN plans AS p ON p.price_id = s.price_id
    LEFT JOIN plans AS d ON d.price_id = 'default'
    LEFT JOIN LATERAL usage_paid_period(
        coalesce(s.current_period_start, s.created_at), s.current_period_end, p_at
    ) AS paid ON s.status <> 'trialing'
    WHERE u.id = p_user_id;
$$;

COMMENT ON FUNCTION usage_window(uuid, timestamptz) IS
    'A user''s allowance at p_at: admins unlimited (UTC month); else the subscription that grants access '
    '(active, trialing, past_due; a sign-up trial until its trial_end), its plan''s limit and period; '
    'limit 0 and no period without one. No row for an unknown user.';
