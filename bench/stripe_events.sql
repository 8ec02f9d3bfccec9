-- Statements of bench/stripe_events.py.

-- name: create_users :exec
-- One user per Stripe customer cus_bench_<n>, linked.
INSERT INTO users (email, stripe_customer_id)
SELECT 'bench' || n || '@example.com', 'cus_bench_' || n
FROM generate_series(1, %(count)s) AS n;

-- name: create_raw_table :exec
-- The baseline's table: the payloads and nothing else.
CREATE TABLE bench_raw_events (payload jsonb NOT NULL);

-- name: insert_raw :exec
-- The baseline: one bare INSERT per event.
INSERT INTO bench_raw_events (payload) VALUES (%(payload)s);

-- name: outcome_counts :many
SELECT outcome, count(*) AS n FROM stripe_events GROUP BY outcome ORDER BY outcome;

-- name: async_commit :exec
-- For --async-commit: do not wait for the WAL flush at commit (this session only).
SET synchronous_commit = off;
