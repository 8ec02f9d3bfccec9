-- Rolling back drops every usage period and ledger row, and every subscription
-- row that has no Stripe subscription id yet (a trial started at sign-up):
-- stripe_subscription_id becomes the primary key again.
DROP FUNCTION usage_window(uuid, timestamptz);
DROP FUNCTION usage_paid_period(timestamptz, timestamptz, timestamptz);
DROP FUNCTION usage_months_between(timestamptz, timestamptz);
DROP FUNCTION usage_add_months(timestamptz, integer);
DROP VIEW usage_period_balances;
DROP TABLE usage_ledger;
DROP TABLE usage_periods;
DROP TABLE plans;

DELETE FROM subscriptions WHERE stripe_subscription_id IS NULL;
ALTER TABLE subscriptions ALTER COLUMN last_event_id DROP DEFAULT;
ALTER TABLE subscriptions ALTER COLUMN last_event_created DROP DEFAULT;
DROP INDEX subscriptions_unlinked_user_key;
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_pkey;
ALTER TABLE subscriptions DROP COLUMN id;
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_stripe_subscription_id_key;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_pkey PRIMARY KEY (stripe_subscription_id);
COMMENT ON COLUMN subscriptions.stripe_subscription_id IS NULL;
COMMENT ON COLUMN subscriptions.last_event_id IS 'Stripe event (evt_...) that produced this state.';
COMMENT ON COLUMN subscriptions.last_event_created IS 'Creation time of that event; older events are stale and ignored.';
