-- Test-only queries for the refund events in tests/test_refunds.py.

-- name: refund_state :one
SELECT status, failure_reason, last_event_id, admin_email FROM refunds
WHERE stripe_refund_id = %(stripe_refund_id)s;

-- name: refund_rows :one
SELECT count(*) AS n FROM refunds;
