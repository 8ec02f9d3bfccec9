-- Refunds: the audit of Stripe refunds, issued by an admin or seen in events.
--
-- The app wrote its Refund row after Stripe's refund succeeded and ignored a
-- failure to write it; its foreign key to the admin (ON DELETE RESTRICT) made
-- the admin impossible to delete. Here the row is keyed by Stripe's refund id
-- (recording it again changes nothing), the admin is kept by id and by e-mail,
-- and deleting the admin only clears the id. Stripe events about a refund
-- (refund.*, charge.refund.updated, charge.refunded) move its status forward
-- along (last_event_created, last_event_id), as for subscriptions.

CREATE TABLE refunds (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stripe_refund_id         text NOT NULL,
    stripe_charge_id         text,
    stripe_payment_intent_id text,
    amount                   bigint NOT NULL,
    currency                 text NOT NULL,
    reason                   text,
    status                   text NOT NULL,
    failure_reason           text,
    admin_user_id            uuid REFERENCES users (id) ON DELETE SET NULL,
    admin_email              text,
    customer_email           text,
    note                     text,
    metadata                 jsonb NOT NULL DEFAULT '{}',
    stripe_created           timestamptz,
    last_event_id            text,
    last_event_created       timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refunds_stripe_refund_id_key UNIQUE (stripe_refund_id),
    CONSTRAINT refunds_status_check CHECK (
        status IN ('pending', 'requires_action', 'succeeded', 'failed', 'canceled')),
    CONSTRAINT refunds_amount_check CHECK (amount >= 0),
    CONSTRAINT refunds_currency_check CHECK (currency ~ '^[a-z]{3}$'),
    CONSTRAINT refunds_event_check CHECK ((last_event_id IS NULL) = (last_event_created IS NULL))
);

CREATE INDEX refunds_created_idx ON refunds (created_at DESC, id DESC);
CREATE INDEX refunds_stripe_charge_id_idx ON refunds (stripe_charge_id)
    WHERE stripe_charge_id IS NOT NULL;
CREATE INDEX refunds_admin_user_id_idx ON refunds (admin_user_id) WHERE admin_user_id IS NOT NULL;

COMMENT ON TABLE refunds IS 'Stripe refunds: who issued each, and its status as Stripe last reported it.';
COMMENT ON COLUMN refunds.stripe_refund_id IS 'Stripe refund (re_...); unique: recording it again changes nothing.';
COMMENT ON COLUMN refunds.amount IS 'In the currency''s smallest unit (cents), as Stripe gives it.';
COMMENT ON COLUMN refunds.status IS 'pending, requires_action, succeeded, failed or canceled.';
COMMENT ON COLUMN refunds.admin_user_id IS 'The admin who issued it; NULL if unknown or since deleted.';
COMMENT ON COLUMN refunds.admin_email IS 'That admin''s e-mail when the refund was recorded (kept after the admin is deleted).';
COMMENT ON COLUMN refunds.customer_email IS 'The refunded customer''s e-mail, as the admin gave it.';
COMMENT ON COLUMN refunds.last_event_id IS 'Newest Stripe event applied to this refund; NULL when none has been.';

CREATE TRIGGER refunds_set_updated_at BEFORE UPDATE ON refunds
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE FUNCTION refund_status_rank(status text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE status WHEN 'pending' THEN 0 WHEN 'requires_action' THEN 1
                   WHEN 'succeeded' THEN 2 ELSE 3 END;

COMMENT ON FUNCTION refund_status_rank(text) IS
    'How far along a refund is: pending 0, requires_action 1, succeeded 2, failed and canceled 3.';
