-- Stripe billing: one row per Stripe subscription, and the log of every
-- webhook event received.
--
-- Webhooks arrive at least once and in any order, so each subscription row
-- remembers the newest event applied to it (last_event_created, last_event_id):
-- an older event is recorded as 'stale' and changes nothing. stripe_events is
-- written in the same transaction as the effect of the event.

CREATE TABLE subscriptions (
    stripe_subscription_id text PRIMARY KEY,
    user_id                uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stripe_customer_id     text NOT NULL,
    status                 text NOT NULL,
    price_id               text,
    quantity               integer,
    "interval"             text,
    interval_count         integer,
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    cancel_at              timestamptz,
    canceled_at            timestamptz,
    ended_at               timestamptz,
    trial_start            timestamptz,
    trial_end              timestamptz,
    metadata               jsonb NOT NULL DEFAULT '{}',
    last_event_id          text NOT NULL,
    last_event_created     timestamptz NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subscriptions_status_check CHECK (status IN (
        'incomplete', 'incomplete_expired', 'trialing', 'active',
        'past_due', 'canceled', 'unpaid', 'paused')),
    CONSTRAINT subscriptions_interval_check CHECK ("interval" IN ('day', 'week', 'month', 'year')),
    CONSTRAINT subscriptions_quantity_check CHECK (quantity >= 0),
    CONSTRAINT subscriptions_interval_count_check CHECK (interval_count > 0)
);

CREATE INDEX subscriptions_user_id_idx ON subscriptions (user_id);
CREATE INDEX subscriptions_stripe_customer_id_idx ON subscriptions (stripe_customer_id);

COMMENT ON TABLE subscriptions IS 'Mirror of Stripe subscriptions, fed by webhooks (never edited by hand).';
COMMENT ON COLUMN subscriptions.status IS 'Stripe subscription status; active, trialing and past_due grant access.';
COMMENT ON COLUMN subscriptions.price_id IS 'Stripe price (price_...) of the first subscription item.';
COMMENT ON COLUMN subscriptions."interval" IS 'Billing interval of that price: day, week, month or year.';
COMMENT ON COLUMN subscriptions.current_period_start IS 'Start of the paid period (read from the item at API versions since 2025-03-31).';
COMMENT ON COLUMN subscriptions.last_event_id IS 'Stripe event (evt_...) that produced this state.';
COMMENT ON COLUMN subscriptions.last_event_created IS 'Creation time of that event; older events are stale and ignored.';

CREATE TRIGGER subscriptions_set_updated_at BEFORE UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE stripe_events (
    id                     text PRIMARY KEY,
    type                   text NOT NULL,
    created                timestamptz NOT NULL,
    api_version            text,
    livemode               boolean NOT NULL DEFAULT false,
    stripe_customer_id     text,
    stripe_subscription_id text,
    payload                jsonb NOT NULL,
    outcome                text NOT NULL DEFAULT 'pending',
    error                  text,
    received_at            timestamptz NOT NULL DEFAULT now(),
    processed_at           timestamptz,
    CONSTRAINT stripe_events_outcome_check CHECK (outcome IN (
        'pending', 'applied', 'duplicate', 'stale', 'ignored', 'unmatched', 'failed'))
);

CREATE INDEX stripe_events_customer_idx ON stripe_events (stripe_customer_id)
    WHERE stripe_customer_id IS NOT NULL;
CREATE INDEX stripe_events_retry_idx ON stripe_events (outcome, created)
    WHERE outcome IN ('unmatched', 'failed');
CREATE INDEX stripe_events_received_at_idx ON stripe_events (received_at);

COMMENT ON TABLE stripe_events IS 'Every Stripe webhook event received, verbatim, with what applying it did.';
COMMENT ON COLUMN stripe_events.created IS 'When Stripe created the event (orders events per subscription).';
COMMENT ON COLUMN stripe_events.outcome IS 'applied, duplicate, stale, ignored, unmatched (no user yet; replayed on link), failed, or pending.';
COMMENT ON COLUMN stripe_events.stripe_customer_id IS 'Customer the event concerns, kept for replay when the customer is linked to a user.';
