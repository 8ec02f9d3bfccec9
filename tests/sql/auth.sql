-- Raw rows for tests/test_auth.py: what is really stored, read around the adapter
-- (the Auth.js suite's db.user / db.session / db.account / db.verificationToken).

-- name: raw_user :one
-- The Auth.js User fields of a users row.
SELECT id, name, email, email_verified, image FROM users WHERE id = %(id)s;

-- name: raw_session :one
-- A sessions row, found by token digest.
SELECT session_token_hash, user_id, expires FROM sessions
WHERE session_token_hash = %(token_hash)s;

-- name: raw_account :one
-- The Auth.js Account fields of an accounts row.
SELECT id, user_id, type, provider, provider_account_id, refresh_token, access_token,
       expires_at, token_type, scope, id_token, session_state
FROM accounts
WHERE provider = %(provider)s AND provider_account_id = %(provider_account_id)s;

-- name: raw_verification_token :one
-- A verification_tokens row, found by identifier and token digest.
SELECT identifier, token_hash, expires FROM verification_tokens
WHERE identifier = %(identifier)s AND token_hash = %(token_hash)s;

-- name: session_rows_as_text :many
-- Every sessions row rendered as text (to prove a raw token is not in it).
SELECT s::text AS row, encode(s.session_token_hash, 'escape') AS hash_as_text
FROM sessions AS s;

-- name: verification_token_rows_as_text :many
-- Every verification_tokens row rendered as text.
SELECT v::text AS row, encode(v.token_hash, 'escape') AS hash_as_text
FROM verification_tokens AS v;

-- name: count_sessions :one
SELECT count(*) AS n FROM sessions;

-- name: count_verification_tokens :one
SELECT count(*) AS n FROM verification_tokens;

-- name: count_users :one
SELECT count(*) AS n FROM users;
