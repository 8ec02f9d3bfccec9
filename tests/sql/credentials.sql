-- Raw reads and writes for tests/test_credentials.py, around the adapter.

-- name: set_raw_password_hash :execrows
-- Store a hash as the Node app (or an adoption) would have: verbatim.
UPDATE users SET password_hash = %(password_hash)s WHERE id = %(id)s;

-- name: raw_password_hash :one
-- The stored hash of a user.
SELECT password_hash FROM users WHERE id = %(id)s;

-- name: user_row_as_text :one
-- A users row rendered as text (to find the hash where it must not be).
SELECT u::text AS row FROM users AS u WHERE id = %(id)s;

-- name: sessions_of :one
-- How many sessions a user has.
SELECT count(*) AS n FROM sessions WHERE user_id = %(user_id)s;

-- name: count_verification_tokens :one
-- How many verification tokens are stored.
SELECT count(*) AS n FROM verification_tokens;

-- name: read_only :exec
-- Make the current transaction read-only, as on a hot standby.
SET TRANSACTION READ ONLY;

-- name: insert_subscription :exec
-- A minimal subscription of a user.
INSERT INTO subscriptions (stripe_subscription_id, user_id, stripe_customer_id, status,
                           last_event_id, last_event_created)
VALUES (%(id)s, %(user_id)s, 'cus_test', %(status)s, 'evt_test', now());

-- name: insert_csv_upload :exec
-- A completed upload of a user (its rows are not needed for the counts).
INSERT INTO csv_uploads (user_id, filename, status, total_rows)
VALUES (%(user_id)s, 'people.csv', 'completed', %(total_rows)s);

-- name: count_user_rows :one
-- How many rows of each kind belong to a user (after a delete: all zero).
SELECT (SELECT count(*) FROM users WHERE id = %(id)s) AS users,
       (SELECT count(*) FROM sessions WHERE user_id = %(id)s) AS sessions,
       (SELECT count(*) FROM accounts WHERE user_id = %(id)s) AS accounts,
       (SELECT count(*) FROM subscriptions WHERE user_id = %(id)s) AS subscriptions,
       (SELECT count(*) FROM csv_uploads WHERE user_id = %(id)s) AS csv_uploads;
