-- Rolling back keeps each subscription's status as it is and forgets the
-- invoice events' part in it (the events stay in stripe_events).
DROP FUNCTION refund_stage(text);
DROP FUNCTION subscription_status_with_invoice(text, timestamptz, integer, text, timestamptz);
ALTER TABLE subscriptions
    DROP COLUMN invoice_event_created,
    DROP COLUMN invoice_event_id,
    DROP COLUMN invoice_status,
    DROP COLUMN snapshot_status;
COMMENT ON COLUMN subscriptions.status IS 'Stripe subscription status; active, trialing and past_due grant access.';
COMMENT ON COLUMN refunds.last_event_id IS 'Newest Stripe event applied to this refund; NULL when none has been.';
