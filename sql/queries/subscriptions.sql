-- Stripe webhook events -> subscriptions (trampolin.subscriptions).
--
-- Every event is written to stripe_events in the same transaction as its
-- effect. Order-safety: a subscription row only moves forward along the key
--     (event created, event rank, event id COLLATE "C")
-- where rank breaks ties between events of the same second:
--     customer.subscription.created 0 < every other snapshot 1 < deleted 2
-- (Stripe often sends created and updated in the same second; the ranks are
-- trampolin.stripe_payload.EVENT_RANKS, passed as %(rank)s) and the event id
-- makes the order total, so every delivery order converges to the same row.
-- Two events of the same second and rank are ordered by id: deterministic, but
-- not necessarily Stripe's order (its ids are not sequential). The row keeps
-- its key in last_event_created, last_event_rank, last_event_id.
-- A delivery whose key is not above the stored one writes nothing ('stale');
-- the same event delivered twice has an equal key and writes nothing either.
--
-- Invoice payment events are kept beside the newest snapshot, each the newest
-- of its kind by its own key, and the row's status is computed from both
-- (apply_invoice; subscription_status_with_invoice, migration 0012).
-- A user's sign-up row (no Stripe id yet) becomes the row of the first Stripe
-- subscription that appears for them: the statements say 'link', the caller
-- runs link_trial and the statement again.
--
-- A 'failed' event is tried again when Stripe delivers it again; an event
-- that was 'unmatched' (no user for its customer yet) is tried again when the
-- customer is linked to a user.

-- name: apply_snapshot :one
-- Record a customer.subscription.* event and upsert its snapshot, in one
-- statement. %(retry)s lists the stored outcomes that may be tried again
-- (a new delivery: {failed}; a replay: the outcome being replayed). Returns
-- outcome: applied, stale, unmatched, duplicate (the event was already
-- recorded with an outcome not in %(retry)s; nothing was written), or, when
-- %(may_link)s, link: the subscription has no row yet and its user has a
-- sign-up row (no Stripe id); nothing was written, link_trial that row to it
-- and run this again without may_link. Also returns the user.
-- The user is the one linked to the customer, else the one named by
-- metadata.user_id (or the app's userId), else the one the subscription
-- already belongs to (its customer may since have been replaced by a newer
-- one on the user).
-- The row's status is the snapshot's, or a newer invoice event's
-- (subscription_status_with_invoice, migration 0012); snapshot_status keeps
-- the snapshot's. While trialing, trial_start keeps the earliest start it had,
-- so a linked sign-up trial keeps its usage counter.
--
-- The stored key is read from the subscription row only (last_event_rank is
-- kept there): the WHERE of the upsert sees the newest, locked row version,
-- while any subquery would see the statement's snapshot, which misses an
-- event committed by the delivery this one waited for.
--
-- Locks, in this order: the user named by metadata (FOR KEY SHARE, the lock the
-- foreign key check takes anyway, taken before the insert: a link holding that
-- row makes this wait before it inserts the subscription, not after, when the
-- link's replay may wait for that insert; a user found by customer is linked
-- already and needs no such lock), the subscription row, the event row. The
-- upsert's WHERE is evaluated on the newest row version, after waiting for a
-- concurrent writer; a concurrent delivery of the same event waits on the
-- event's primary key for the first to commit, then does nothing.
-- Keep the SQL under 4096 characters: psycopg caches the parsing of shorter
-- queries only.
WITH matched AS (
    SELECT coalesce(
        (SELECT id FROM users WHERE stripe_customer_id = %(customer_id)s),
        (SELECT id FROM users WHERE id = %(metadata_user_id)s::uuid FOR KEY SHARE),
        (SELECT user_id FROM subscriptions WHERE stripe_subscription_id = %(subscription_id)s)
    ) AS user_id
),
state AS (
    SELECT NOT EXISTS (
        SELECT FROM stripe_events
        WHERE id = %(event_id)s AND outcome <> ALL (%(retry)s::text[])) AS fresh,
    NOT EXISTS (
        SELECT FROM subscriptions WHERE stripe_subscription_id = %(subscription_id)s) AS new_row,
    %(may_link)s AND EXISTS (
        SELECT FROM subscriptions JOIN matched USING (user_id)
        WHERE stripe_subscription_id IS NULL) AS signup_row
),
written AS (
    INSERT INTO subscriptions AS s (
        stripe_subscription_id, user_id, stripe_customer_id, status, snapshot_status, price_id,
        quantity, "interval", interval_count, current_period_start, current_period_end,
        cancel_at_period_end, cancel_at, canceled_at, ended_at, trial_start, trial_end,
        metadata, last_event_id, last_event_created, last_event_rank)
    SELECT %(subscription_id)s, user_id, %(customer_id)s, %(status)s, %(status)s, %(price_id)s,
           %(quantity)s, %(interval)s, %(interval_count)s, %(current_period_start)s,
           %(current_period_end)s, %(cancel_at_period_end)s, %(cancel_at)s, %(canceled_at)s,
           %(ended_at)s, %(trial_start)s, %(trial_end)s, %(metadata)s, %(event_id)s,
           %(created)s, %(rank)s
    FROM matched, state
    WHERE user_id IS NOT NULL AND fresh AND NOT (new_row AND signup_row)
    ON CONFLICT (stripe_subscription_id) DO UPDATE SET
        user_id = excluded.user_id, stripe_customer_id = excluded.stripe_customer_id,
        status = subscription_status_with_invoice(excluded.status, excluded.last_event_created,
            excluded.last_event_rank, s.invoice_status, s.invoice_event_created),
        snapshot_status = excluded.status, price_id = excluded.price_id,
        quantity = excluded.quantity, "interval" = excluded."interval",
        interval_count = excluded.interval_count,
        current_period_start = excluded.current_period_start,
        current_period_end = excluded.current_period_end,
        cancel_at_period_end = excluded.cancel_at_period_end,
        cancel_at = excluded.cancel_at, canceled_at = excluded.canceled_at,
        ended_at = excluded.ended_at, trial_end = excluded.trial_end,
        trial_start = CASE WHEN excluded.status = 'trialing' AND s.status = 'trialing'
            THEN least(s.trial_start, excluded.trial_start) ELSE excluded.trial_start END,
        metadata = excluded.metadata, last_event_id = excluded.last_event_id,
        last_event_created = excluded.last_event_created,
        last_event_rank = excluded.last_event_rank
    WHERE (s.last_event_created, s.last_event_rank, s.last_event_id COLLATE "C")
        < (excluded.last_event_created, excluded.last_event_rank,
           excluded.last_event_id COLLATE "C")
    RETURNING 1
),
result AS (
    SELECT CASE WHEN NOT fresh THEN 'duplicate' WHEN user_id IS NULL THEN 'unmatched'
        WHEN new_row AND signup_row THEN 'link' WHEN EXISTS (SELECT FROM written) THEN 'applied'
        ELSE 'stale' END AS outcome, user_id
    FROM matched, state
),
recorded AS (
    INSERT INTO stripe_events AS e (
        id, type, created, api_version, livemode, stripe_customer_id,
        stripe_subscription_id, payload, outcome, processed_at)
    SELECT %(event_id)s, %(type)s, %(created)s, %(api_version)s, %(livemode)s,
           %(customer_id)s, %(subscription_id)s, %(payload)s, outcome, now()
    FROM result
    WHERE outcome NOT IN ('duplicate', 'link')
    ON CONFLICT (id) DO UPDATE SET
        outcome = excluded.outcome, error = NULL, processed_at = excluded.processed_at
    WHERE e.outcome = ANY (%(retry)s::text[])
    RETURNING e.outcome
)
SELECT coalesce((SELECT outcome FROM recorded),
                CASE WHEN outcome = 'link' THEN 'link' ELSE 'duplicate' END) AS outcome,
       user_id
FROM result;

-- name: link_trial :execrows
-- Make the user's sign-up row (no Stripe id yet) the row of the Stripe
-- subscription %(subscription_id)s, unless that subscription has a row. 0 rows:
-- nothing to link (none, or a concurrent link took it: this waited for it).
UPDATE subscriptions
SET stripe_subscription_id = %(subscription_id)s,
    stripe_customer_id = coalesce(%(customer_id)s, stripe_customer_id)
WHERE user_id = %(user_id)s AND stripe_subscription_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE stripe_subscription_id = %(subscription_id)s);

-- name: checkout_owner :one
-- The user a completed checkout's subscription belongs to, else the one whose
-- sign-up row (no Stripe id yet) holds its customer (the app makes the
-- customer at sign-up and names nobody in the Checkout Session).
SELECT user_id AS id FROM subscriptions
WHERE stripe_subscription_id = %(subscription_id)s
   OR (stripe_customer_id = %(customer_id)s AND stripe_subscription_id IS NULL)
ORDER BY stripe_subscription_id IS NULL, created_at
LIMIT 1;

-- name: apply_invoice :one
-- Record an invoice payment event and keep it on its subscription's row if it
-- is the newest invoice event there (invoice_status: %(invoice_status)s,
-- 'active' or 'past_due'), in one statement; the row's status is then
-- subscription_status_with_invoice of its snapshot and this event. A
-- subscription with no row yet gets one here, as Stripe makes every
-- subscription: incomplete until its first snapshot comes (which then
-- overwrites it, a newer payment still counting). Returns outcome and user as
-- apply_snapshot: applied (the newest word on the subscription: newer than its
-- newest snapshot and invoice event), stale (older than either), unmatched (no
-- row and no user for the customer: replayed when it is linked), duplicate, or
-- link (with %(may_link)s: link_trial the user's sign-up row first).
-- The user: the subscription's, else the one linked to the customer (no user
-- row lock needed: a link of that customer to that user writes nothing).
-- A new row and a snapshot's insert wait for each other on the unique key.
WITH matched AS (
    SELECT coalesce(
        (SELECT user_id FROM subscriptions WHERE stripe_subscription_id = %(subscription_id)s),
        (SELECT id FROM users WHERE stripe_customer_id = %(customer_id)s)
    ) AS user_id
),
state AS (
    SELECT NOT EXISTS (
        SELECT FROM stripe_events
        WHERE id = %(event_id)s AND outcome <> ALL (%(retry)s::text[])) AS fresh,
    NOT EXISTS (
        SELECT FROM subscriptions WHERE stripe_subscription_id = %(subscription_id)s) AS new_row,
    %(may_link)s AND EXISTS (
        SELECT FROM subscriptions JOIN matched USING (user_id)
        WHERE stripe_subscription_id IS NULL) AS signup_row
),
kept AS (
    INSERT INTO subscriptions AS s (
        stripe_subscription_id, user_id, stripe_customer_id, status, snapshot_status,
        invoice_status, invoice_event_id, invoice_event_created)
    SELECT %(subscription_id)s, user_id, %(customer_id)s,
           subscription_status_with_invoice(
               'incomplete', '-infinity', 1, %(invoice_status)s, %(created)s),
           'incomplete', %(invoice_status)s, %(event_id)s, %(created)s
    FROM matched, state
    WHERE user_id IS NOT NULL AND fresh AND NOT (new_row AND signup_row)
    ON CONFLICT (stripe_subscription_id) DO UPDATE SET
        invoice_status = excluded.invoice_status,
        invoice_event_id = excluded.invoice_event_id,
        invoice_event_created = excluded.invoice_event_created,
        snapshot_status = coalesce(s.snapshot_status, s.status),
        status = subscription_status_with_invoice(coalesce(s.snapshot_status, s.status),
            s.last_event_created, s.last_event_rank,
            excluded.invoice_status, excluded.invoice_event_created)
    WHERE s.invoice_event_id IS NULL
       OR (s.invoice_event_created, s.invoice_event_id COLLATE "C")
          < (excluded.invoice_event_created, excluded.invoice_event_id COLLATE "C")
    RETURNING (s.invoice_event_created, 1) > (s.last_event_created, s.last_event_rank) AS newest
),
result AS (
    SELECT CASE WHEN NOT fresh THEN 'duplicate' WHEN user_id IS NULL THEN 'unmatched'
        WHEN new_row AND signup_row THEN 'link'
        WHEN EXISTS (SELECT FROM kept WHERE newest) THEN 'applied'
        ELSE 'stale' END AS outcome, user_id
    FROM matched, state
),
recorded AS (
    INSERT INTO stripe_events AS e (
        id, type, created, api_version, livemode, stripe_customer_id,
        stripe_subscription_id, payload, outcome, processed_at)
    SELECT %(event_id)s, %(type)s, %(created)s, %(api_version)s, %(livemode)s,
           %(customer_id)s, %(subscription_id)s, %(payload)s, outcome, now()
    FROM result
    WHERE outcome NOT IN ('duplicate', 'link')
    ON CONFLICT (id) DO UPDATE SET
        outcome = excluded.outcome, error = NULL, processed_at = excluded.processed_at
    WHERE e.outcome = ANY (%(retry)s::text[])
    RETURNING e.outcome
)
SELECT coalesce((SELECT outcome FROM recorded),
                CASE WHEN outcome = 'link' THEN 'link' ELSE 'duplicate' END) AS outcome,
       user_id
FROM result;

-- name: record_event :one
-- Record an event with an outcome, or set the outcome of a recorded event
-- whose stored outcome is in %(retry)s. No row: already recorded (duplicate).
INSERT INTO stripe_events AS e (
    id, type, created, api_version, livemode, stripe_customer_id,
    stripe_subscription_id, payload, outcome, error, processed_at)
VALUES (%(event_id)s, %(type)s, %(created)s, %(api_version)s, %(livemode)s,
        %(customer_id)s, %(subscription_id)s, %(payload)s, %(outcome)s, %(error)s,
        CASE WHEN %(outcome)s <> 'pending' THEN now() END)
ON CONFLICT (id) DO UPDATE SET
    outcome = excluded.outcome, error = excluded.error, processed_at = excluded.processed_at
WHERE e.outcome = ANY (%(retry)s::text[])
RETURNING e.outcome;

-- name: set_outcome :exec
-- The outcome of an event this transaction has claimed.
UPDATE stripe_events
SET outcome = %(outcome)s, error = NULL, processed_at = now()
WHERE id = %(event_id)s;

-- name: lock_customer :exec
-- Serialise work on one Stripe customer until the end of the transaction:
-- linking it to a user, and deciding that one of its events is unmatched.
-- Without it an event could be judged unmatched just before a link commits
-- and be missed by that link's replay.
SELECT pg_advisory_xact_lock(hashtextextended('trampolin.stripe_customer:' || %(customer_id)s, 0));

-- name: first_named_user :one
-- The first of the ids a checkout names (in their order) that is a user.
SELECT id FROM users
WHERE id = ANY (%(user_ids)s::uuid[])
ORDER BY array_position(%(user_ids)s::uuid[], id)
LIMIT 1;

-- name: customer_owner :one
-- The user linked to a Stripe customer.
SELECT id FROM users WHERE stripe_customer_id = %(customer_id)s;

-- name: set_user_customer :execrows
-- Link a user to a Stripe customer (0 rows: no such user).
UPDATE users SET stripe_customer_id = %(customer_id)s
WHERE id = %(user_id)s AND stripe_customer_id IS DISTINCT FROM %(customer_id)s;

-- name: lock_unmatched_for_customer :many
-- A customer's unmatched events, oldest first, locked for replay; an event
-- locked by a concurrent replay is skipped (that replay waits on the
-- customer lock, then sees the link).
SELECT id, payload FROM stripe_events
WHERE stripe_customer_id = %(customer_id)s AND outcome = 'unmatched'
ORDER BY created, id
FOR UPDATE SKIP LOCKED;

-- name: event_ids_with_outcome :many
-- Events to replay, oldest first.
SELECT id FROM stripe_events
WHERE outcome = %(outcome)s
ORDER BY created, id
LIMIT %(limit)s;

-- name: lock_event_with_outcome :one
-- One event for replay, if it still has that outcome and nobody else holds it.
SELECT id, payload FROM stripe_events
WHERE id = %(event_id)s AND outcome = %(outcome)s
FOR UPDATE SKIP LOCKED;

-- name: events :many
-- Recorded events, newest first; all outcomes when %(outcome)s is NULL.
SELECT id, type, created, api_version, livemode, stripe_customer_id,
       stripe_subscription_id, outcome, error, received_at, processed_at
FROM stripe_events
WHERE %(outcome)s::text IS NULL OR outcome = %(outcome)s
ORDER BY received_at DESC, created DESC, id DESC
LIMIT %(limit)s;

-- name: event_by_id :one
SELECT id, type, created, api_version, livemode, stripe_customer_id,
       stripe_subscription_id, outcome, error, received_at, processed_at
FROM stripe_events
WHERE id = %(event_id)s;

-- name: event_payload :one
SELECT payload FROM stripe_events WHERE id = %(event_id)s;

-- name: subscription_for_user :one
-- The user's current subscription: one that grants access first (see
-- has_access), one linked to Stripe before a sign-up row, then the one whose
-- period ends last (the order usage_window picks the allowance by).
SELECT id, user_id, stripe_customer_id, stripe_subscription_id, status, price_id, quantity,
       "interval", interval_count, current_period_start, current_period_end,
       cancel_at_period_end, cancel_at, canceled_at, ended_at, trial_start, trial_end,
       status = ANY (%(access_statuses)s::text[])
           AND (stripe_subscription_id IS NOT NULL OR trial_end IS NULL OR trial_end > now())
           AS has_access
FROM subscriptions
WHERE user_id = %(user_id)s
ORDER BY has_access DESC, stripe_subscription_id IS NULL, current_period_end DESC NULLS LAST,
         last_event_created DESC, created_at DESC, id
LIMIT 1;

-- name: subscription_by_stripe_id :one
SELECT id, user_id, stripe_customer_id, stripe_subscription_id, status, price_id, quantity,
       "interval", interval_count, current_period_start, current_period_end,
       cancel_at_period_end, cancel_at, canceled_at, ended_at, trial_start, trial_end,
       status = ANY (%(access_statuses)s::text[]) AS has_access
FROM subscriptions
WHERE stripe_subscription_id = %(stripe_subscription_id)s;

-- name: has_access :one
-- Whether the user has a subscription whose status grants access (is in
-- %(access_statuses)s: trampolin.subscriptions.ACCESS_STATUSES). A sign-up
-- row (no Stripe subscription yet) grants it only until its trial_end, as in
-- usage_window (migration 0009).
SELECT EXISTS (
    SELECT 1 FROM subscriptions
    WHERE user_id = %(user_id)s AND status = ANY (%(access_statuses)s::text[])
      AND (stripe_subscription_id IS NOT NULL OR trial_end IS NULL OR trial_end > now())
) AS has_access;
