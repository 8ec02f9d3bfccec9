-- Billing events beside the subscription snapshots: invoice events, refund events.
--
-- An invoice event says less than a customer.subscription.* snapshot: that a
-- payment succeeded (invoice.paid, invoice.payment_succeeded: 'active') or
-- failed (invoice.payment_failed: 'past_due'). The newest such event is kept
-- on the subscription row beside the newest snapshot (snapshot_status and the
-- row's last_event_*), and the row's status is computed from the two by
-- subscription_status_with_invoice: the snapshot's status, or the invoice's
-- when the invoice is newer and the snapshot's status is one a payment moves.
-- Each of the two is the newest of its kind whatever order events arrive in,
-- so every delivery order ends in the same status, and an invoice never
-- overrides a newer snapshot (at the same second the snapshot wins, except
-- customer.subscription.created, which Stripe sends before the first payment).
--
-- A refund's row moves only forward along
--     (refund_stage(status), event created, refund_status_rank(status), event id)
-- where the admin's record() counts as an event older than every other of its
-- stage (sql/queries/refunds.sql says how). The stage comes first because a
-- refund's life cycle only moves forward: requires_action / pending, then
-- succeeded, then failed or canceled.

ALTER TABLE subscriptions
    ADD COLUMN snapshot_status text,
    ADD COLUMN invoice_status text,
    ADD COLUMN invoice_event_id text,
    ADD COLUMN invoice_event_created timestamptz,
    ADD CONSTRAINT subscriptions_invoice_status_check CHECK (invoice_status IN ('active', 'past_due')),
    ADD CONSTRAINT subscriptions_invoice_event_check CHECK (
        (invoice_event_id IS NULL) = (invoice_event_created IS NULL)
        AND (invoice_event_id IS NULL) = (invoice_status IS NULL));

-- Every row an event made holds its snapshot's status; the state is unchanged, so is updated_at.
ALTER TABLE subscriptions DISABLE TRIGGER subscriptions_set_updated_at;
UPDATE subscriptions SET snapshot_status = status WHERE last_event_id <> '';
ALTER TABLE subscriptions ENABLE TRIGGER subscriptions_set_updated_at;

COMMENT ON COLUMN subscriptions.status IS
    'The status that counts: the snapshot''s, or a newer invoice event''s (subscription_status_with_invoice); active, trialing and past_due grant access.';
COMMENT ON COLUMN subscriptions.snapshot_status IS
    'Status in the newest customer.subscription.* event (last_event_*); NULL on a row no such event made.';
COMMENT ON COLUMN subscriptions.invoice_status IS
    'What the newest invoice event says: active (paid) or past_due (payment failed); NULL if none came.';
COMMENT ON COLUMN subscriptions.invoice_event_id IS 'That invoice event (evt_...).';
COMMENT ON COLUMN subscriptions.invoice_event_created IS 'Its creation time: an older invoice event changes nothing.';

CREATE FUNCTION subscription_status_with_invoice(
    snapshot_status text, snapshot_created timestamptz, snapshot_rank integer,
    invoice_status text, invoice_created timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN invoice_created IS NULL THEN snapshot_status
    -- An invoice event ranks as 1 and loses ties: only created (0) is older at equal seconds.
    WHEN (invoice_created, 1) <= (snapshot_created, snapshot_rank) THEN snapshot_status
    WHEN invoice_status = 'active'
         AND snapshot_status IN ('incomplete', 'trialing', 'past_due', 'unpaid') THEN 'active'
    WHEN invoice_status = 'past_due' AND snapshot_status IN ('active', 'trialing') THEN 'past_due'
    ELSE snapshot_status
END;

COMMENT ON FUNCTION subscription_status_with_invoice(text, timestamptz, integer, text, timestamptz) IS
    'A subscription''s status from its newest snapshot and its newest invoice event: a newer payment makes '
    'incomplete, trialing, past_due or unpaid active; a newer failed payment makes active or trialing past_due.';

CREATE FUNCTION refund_stage(status text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE status WHEN 'succeeded' THEN 1 WHEN 'failed' THEN 2 WHEN 'canceled' THEN 2 ELSE 0 END;

COMMENT ON FUNCTION refund_stage(text) IS
    'Where a refund is in its life cycle, which only moves forward: pending and requires_action 0, '
    'succeeded 1, failed and canceled 2.';
COMMENT ON COLUMN refunds.last_event_id IS
    'The Stripe event whose state the row holds; NULL when it holds what the admin recorded.';
