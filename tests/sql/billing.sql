-- Test-only statements for tests/test_subscriptions.py.

-- name: break_subscriptions :exec
-- Make every write to subscriptions fail, like a broken deploy or a full disk.
CREATE FUNCTION test_fail_subscriptions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'simulated failure writing subscriptions';
END;
$$;
CREATE TRIGGER test_fail_subscriptions BEFORE INSERT OR UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION test_fail_subscriptions();

-- name: repair_subscriptions :exec
DROP TRIGGER test_fail_subscriptions ON subscriptions;
DROP FUNCTION test_fail_subscriptions();

-- name: user_customer :one
SELECT stripe_customer_id FROM users WHERE id = %(user_id)s;

-- name: subscription_row :one
SELECT last_event_id, last_event_created, last_event_rank, updated_at, status FROM subscriptions
WHERE stripe_subscription_id = %(stripe_subscription_id)s;

-- name: count_events :one
SELECT count(*) AS n FROM stripe_events;

-- name: count_subscriptions :one
SELECT count(*) AS n FROM subscriptions;

-- name: advisory_waiters :one
-- Sessions waiting for an advisory lock in this database.
SELECT count(*) AS n FROM pg_locks
WHERE locktype = 'advisory' AND NOT granted AND database = (
    SELECT oid FROM pg_database WHERE datname = current_database());

-- name: lock_waiters :one
-- Sessions of this database waiting for any lock (transaction id locks name
-- no database, hence the join through pg_stat_activity).
SELECT count(*) AS n FROM pg_locks
WHERE NOT granted AND pid <> pg_backend_pid()
  AND pid IN (SELECT pid FROM pg_stat_activity WHERE datname = current_database());

-- name: link_by_hand :exec
-- Link a customer the way a DBA would, behind the library's back (no lock, no replay).
UPDATE users SET stripe_customer_id = %(customer_id)s WHERE id = %(user_id)s;

-- name: insert_signup_row :one
-- The app's sign-up row: trialing, no Stripe subscription yet, the customer it made.
INSERT INTO subscriptions (user_id, stripe_customer_id, status, price_id, trial_start, trial_end)
VALUES (%(user_id)s, %(customer_id)s, 'trialing', 'price_signup', %(trial_start)s, %(trial_end)s)
RETURNING id;

-- name: rows_of_user :many
SELECT id, stripe_subscription_id, status, snapshot_status, invoice_status, invoice_event_id,
       trial_start, trial_end
FROM subscriptions WHERE user_id = %(user_id)s ORDER BY created_at, id;

-- name: invoice_state :one
SELECT status, snapshot_status, invoice_status, invoice_event_id FROM subscriptions
WHERE stripe_subscription_id = %(stripe_subscription_id)s;

-- name: status_with_invoice :one
SELECT subscription_status_with_invoice(
    %(snapshot_status)s, %(snapshot_created)s, %(snapshot_rank)s,
    %(invoice_status)s, %(invoice_created)s) AS status;
