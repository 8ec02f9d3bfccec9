-- Bench-only SQL for bench/auth.py: bulk loading and the hand-written baselines.

-- name: copy_users :copy
-- Bulk-load users.
COPY users (id, email, name) FROM STDIN;

-- name: copy_sessions :copy
-- Bulk-load sessions (token digests).
COPY sessions (session_token_hash, user_id, expires) FROM STDIN;

-- name: copy_verification_tokens :copy
-- Bulk-load verification tokens (token digests).
COPY verification_tokens (identifier, token_hash, expires) FROM STDIN;

-- name: analyze :exec
-- Fresh statistics after the bulk load.
ANALYZE users, sessions, verification_tokens;

-- name: baseline_session_and_user :one
-- What one would write by hand: the live session joined with its user and role.
SELECT s.user_id, s.expires,
       u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM sessions AS s
JOIN users AS u ON u.id = s.user_id
LEFT JOIN roles AS r ON r.id = u.role_id
WHERE s.session_token_hash = %(token_hash)s AND s.expires > statement_timestamp();

-- name: baseline_create_session :one
-- A plain INSERT of a session.
INSERT INTO sessions (session_token_hash, user_id, expires)
VALUES (%(token_hash)s, %(user_id)s, %(expires)s)
RETURNING user_id, expires;

-- name: baseline_use_verification_token :one
-- A plain DELETE ... RETURNING of a verification token.
DELETE FROM verification_tokens
WHERE identifier = %(identifier)s AND token_hash = %(token_hash)s
RETURNING identifier, expires;

-- name: password_hash_of :one
-- The stored hash of a user, for the bare bcrypt.checkpw baseline.
SELECT password_hash FROM users WHERE lower(email) = lower(%(email)s);

-- name: no_fsync_wait :exec
-- This session's commits return before the WAL reaches disk (bench writes only).
SET synchronous_commit = off;

-- name: baseline_session_and_user_asyncpg :one
-- baseline_session_and_user in asyncpg's placeholder style ($1), for bench/async_auth.py.
SELECT s.user_id, s.expires,
       u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM sessions AS s
JOIN users AS u ON u.id = s.user_id
LEFT JOIN roles AS r ON r.id = u.role_id
WHERE s.session_token_hash = $1 AND s.expires > statement_timestamp();
