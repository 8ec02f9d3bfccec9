-- Refunds (trampolin.refunds): the audit row of every Stripe refund.
--
-- A refund's row is keyed by Stripe's refund id. An admin's record() and the
-- Stripe events about the same refund may arrive in either order; each fills
-- in what it knows and neither undoes the other: the admin fields are set
-- once (first writer wins), and the status moves only forward: by a newer
-- event (last_event_created, last_event_id), or, from record(), to a status
-- of a higher refund_status_rank while no event has set it.

-- name: record :one
-- Insert the refund an admin issued, or complete the row an event made. No
-- row: no user %(admin_user_id)s.
INSERT INTO refunds AS r (
    stripe_refund_id, stripe_charge_id, stripe_payment_intent_id, amount, currency,
    reason, status, failure_reason, admin_user_id, admin_email, customer_email, note,
    metadata, stripe_created)
SELECT %(stripe_refund_id)s, %(stripe_charge_id)s, %(stripe_payment_intent_id)s, %(amount)s,
       %(currency)s, %(reason)s, %(status)s, %(failure_reason)s, u.id, u.email,
       %(customer_email)s, %(note)s, %(metadata)s, %(stripe_created)s
FROM users AS u
WHERE u.id = %(admin_user_id)s
ON CONFLICT (stripe_refund_id) DO UPDATE
SET stripe_charge_id = coalesce(r.stripe_charge_id, excluded.stripe_charge_id),
    stripe_payment_intent_id = coalesce(r.stripe_payment_intent_id, excluded.stripe_payment_intent_id),
    stripe_created = coalesce(r.stripe_created, excluded.stripe_created),
    admin_user_id = CASE WHEN r.admin_email IS NULL THEN excluded.admin_user_id
                         ELSE r.admin_user_id END,
    admin_email = coalesce(r.admin_email, excluded.admin_email),
    customer_email = coalesce(r.customer_email, excluded.customer_email),
    note = coalesce(r.note, excluded.note),
    status = CASE WHEN r.last_event_id IS NULL
                       AND refund_status_rank(excluded.status) > refund_status_rank(r.status)
                  THEN excluded.status ELSE r.status END,
    failure_reason = CASE WHEN r.last_event_id IS NULL
                               AND refund_status_rank(excluded.status) > refund_status_rank(r.status)
                          THEN excluded.failure_reason ELSE r.failure_reason END
RETURNING r.id, r.stripe_refund_id, r.stripe_charge_id, r.stripe_payment_intent_id, r.amount,
          r.currency, r.reason, r.status, r.failure_reason, r.admin_user_id, r.admin_email,
          r.customer_email, r.note, r.metadata, r.stripe_created, r.created_at, r.updated_at;

-- name: list_refunds :many
-- The newest refunds first.
SELECT id, stripe_refund_id, stripe_charge_id, stripe_payment_intent_id, amount, currency,
       reason, status, failure_reason, admin_user_id, admin_email, customer_email, note,
       metadata, stripe_created, created_at, updated_at
FROM refunds
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: by_stripe_id :one
SELECT id, stripe_refund_id, stripe_charge_id, stripe_payment_intent_id, amount, currency,
       reason, status, failure_reason, admin_user_id, admin_email, customer_email, note,
       metadata, stripe_created, created_at, updated_at
FROM refunds
WHERE stripe_refund_id = %(stripe_refund_id)s;
