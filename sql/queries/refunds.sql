-- Refunds (trampolin.refunds): the audit row of every Stripe refund.
--
-- A refund's row is keyed by Stripe's refund id. An admin's record() and the
-- Stripe events about the same refund (through Subscriptions.apply_stripe_event)
-- may arrive in any order; each fills in what it knows and none undoes
-- another. The admin fields are set once (first writer wins). The state
-- (status, failure_reason, reason, metadata) moves only forward along
--     (refund_stage(status), event created, refund_status_rank(status), event id)
-- where record() counts as an event created at -infinity with id '' (older
-- than every event of its stage). The stage comes first: a refund's life cycle
-- only moves forward (pending or requires_action, then succeeded, then failed
-- or canceled), so a late refund.created never takes a refund back to
-- pending. Within a stage the newer event wins (requires_action -> pending,
-- failed vs canceled), and at the same second the further status. The maximum
-- of a total order does not depend on the order the inputs arrive in, so every
-- delivery order ends in the same row. The row keeps the event whose state it
-- holds in last_event_id / last_event_created (NULL: the admin's record()).

-- name: record :one
-- Insert the refund an admin issued, or complete the row an event made: the
-- admin, the e-mails, the note, missing ids (its state: advance). No row: no
-- user %(admin_user_id)s.
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
    note = coalesce(r.note, excluded.note)
RETURNING r.id, r.stripe_refund_id, r.stripe_charge_id, r.stripe_payment_intent_id, r.amount,
          r.currency, r.reason, r.status, r.failure_reason, r.admin_user_id, r.admin_email,
          r.customer_email, r.note, r.metadata, r.stripe_created, r.created_at, r.updated_at;

-- name: insert_from_event :one
-- The row of a refund first seen in a Stripe event, without an admin (record()
-- fills that in later). No row: the refund has a row already (advance it).
INSERT INTO refunds (
    stripe_refund_id, stripe_charge_id, stripe_payment_intent_id, amount, currency,
    reason, status, failure_reason, metadata, stripe_created, last_event_id, last_event_created)
VALUES (%(stripe_refund_id)s, %(stripe_charge_id)s, %(stripe_payment_intent_id)s, %(amount)s,
        %(currency)s, %(reason)s, %(status)s, %(failure_reason)s, %(metadata)s,
        %(stripe_created)s, %(event_id)s, %(event_created)s)
ON CONFLICT (stripe_refund_id) DO NOTHING
RETURNING id;

-- name: advance :one
-- Move an existing refund to the state %(status)s, ... of the event
-- %(event_id)s created %(event_created)s (both NULL: the admin's record()),
-- if that is further along the order above. No row: it is not (stale), or
-- there is no such refund. Runs on the newest row version: a concurrent
-- writer of the row is waited for, then the comparison is made again.
UPDATE refunds AS r
SET status = %(status)s,
    failure_reason = %(failure_reason)s,
    reason = %(reason)s,
    metadata = %(metadata)s,
    last_event_id = %(event_id)s,
    last_event_created = %(event_created)s
WHERE r.stripe_refund_id = %(stripe_refund_id)s
  AND (refund_stage(%(status)s), coalesce(%(event_created)s::timestamptz, '-infinity'),
       refund_status_rank(%(status)s), coalesce(%(event_id)s::text, '') COLLATE "C")
    > (refund_stage(r.status), coalesce(r.last_event_created, '-infinity'),
       refund_status_rank(r.status), coalesce(r.last_event_id, '') COLLATE "C")
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
