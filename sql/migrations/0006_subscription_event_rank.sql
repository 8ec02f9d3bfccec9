-- Billing: subscriptions.last_event_rank, the rank of the event that produced the row.
--
-- A subscription row only moves forward along (last_event_created,
-- last_event_rank, last_event_id). The rank (customer.subscription.created 0,
-- deleted 2, any other event 1) used to be looked up in stripe_events by a
-- subquery, which runs on the statement's snapshot: a delivery that waited for
-- a concurrent one to commit could not see that event's row and took its rank
-- as 1, so an update of the same second could undo a deletion. Kept on the
-- row itself, the rank is read from the locked, newest row version.

ALTER TABLE subscriptions ADD COLUMN last_event_rank smallint NOT NULL DEFAULT 1;

-- Backfill from the event log; the rows' state is unchanged, so is updated_at.
ALTER TABLE subscriptions DISABLE TRIGGER subscriptions_set_updated_at;
UPDATE subscriptions AS s
SET last_event_rank = CASE e.type
        WHEN 'customer.subscription.created' THEN 0
        WHEN 'customer.subscription.deleted' THEN 2
        ELSE 1
    END
FROM stripe_events AS e
WHERE e.id = s.last_event_id AND e.type IN (
    'customer.subscription.created', 'customer.subscription.deleted');
ALTER TABLE subscriptions ENABLE TRIGGER subscriptions_set_updated_at;

ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_last_event_rank_check
    CHECK (last_event_rank BETWEEN 0 AND 2);

COMMENT ON COLUMN subscriptions.last_event_rank IS
    'Rank of that event among events of the same second: subscription.created 0, deleted 2, others 1.';
