-- The Auth.js adapter contract (trampolin.auth.AuthAdapter), credentials, roles and pruning.
--
-- Session and verification tokens never reach these queries: the repository
-- passes their SHA-256 digests (%(token_hash)s, 32 bytes of bytea). Every user
-- query returns the same columns, with the role's name instead of its id.
-- Expiry is judged by the server's clock at statement_timestamp(), so that a
-- long caller transaction (whose now() is frozen) still sees expiry on time.

-- name: create_user :one
-- Insert a user; users_email_key (on lower(email)) rejects duplicates.
-- password_hash is a bcrypt hash made by the repository, or NULL.
WITH inserted AS (
    INSERT INTO users (email, name, image, email_verified, password_hash)
    VALUES (%(email)s, %(name)s::text, %(image)s::text, %(email_verified)s::timestamptz,
            %(password_hash)s::text)
    RETURNING id, name, email, email_verified, image, role_id, created_at, updated_at,
              password_hash
)
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM inserted AS u
LEFT JOIN roles AS r ON r.id = u.role_id;

-- name: get_user :one
-- The user with that id, or no row.
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM users AS u
LEFT JOIN roles AS r ON r.id = u.role_id
WHERE u.id = %(id)s;

-- name: get_user_by_email :one
-- The user with that email, matched case-insensitively (uses users_email_key).
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM users AS u
LEFT JOIN roles AS r ON r.id = u.role_id
WHERE lower(u.email) = lower(%(email)s);

-- name: get_user_by_account :one
-- The user who linked that provider account, or no row.
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM accounts AS a
JOIN users AS u ON u.id = a.user_id
LEFT JOIN roles AS r ON r.id = u.role_id
WHERE a.provider = %(provider)s AND a.provider_account_id = %(provider_account_id)s;

-- name: update_user :one
-- Partial update: each column changes only when its set_<column> flag is true,
-- so a field the caller left out keeps its value and an explicit NULL clears it.
-- The statement text never varies; every value is a bound parameter.
WITH updated AS (
    UPDATE users SET
        name = CASE WHEN %(set_name)s::boolean THEN %(name)s::text ELSE name END,
        email = CASE WHEN %(set_email)s::boolean THEN %(email)s::text ELSE email END,
        email_verified = CASE WHEN %(set_email_verified)s::boolean
                              THEN %(email_verified)s::timestamptz ELSE email_verified END,
        image = CASE WHEN %(set_image)s::boolean THEN %(image)s::text ELSE image END
    WHERE id = %(id)s
    RETURNING id, name, email, email_verified, image, role_id, created_at, updated_at,
              password_hash
)
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM updated AS u
LEFT JOIN roles AS r ON r.id = u.role_id;

-- name: delete_user :execrows
-- Delete a user; accounts, sessions, subscriptions and CSV uploads (with their
-- rows) go with it (ON DELETE CASCADE).
DELETE FROM users WHERE id = %(id)s;

-- name: user_dependents :one
-- What delete_user would take with the user: counts per table. Live (not
-- ended) subscriptions are those Stripe may still bill: deleting the row here
-- does not cancel them there. No row for an unknown user.
SELECT
    (SELECT count(*) FROM sessions AS s WHERE s.user_id = u.id) AS sessions,
    (SELECT count(*) FROM accounts AS a WHERE a.user_id = u.id) AS accounts,
    (SELECT count(*) FROM subscriptions AS b WHERE b.user_id = u.id) AS subscriptions,
    (SELECT count(*) FROM subscriptions AS b
     WHERE b.user_id = u.id
       AND b.status NOT IN ('canceled', 'incomplete_expired'))
        AS live_subscriptions,
    (SELECT count(*) FROM csv_uploads AS c WHERE c.user_id = u.id) AS csv_uploads,
    (SELECT coalesce(sum(c.total_rows), 0) FROM csv_uploads AS c WHERE c.user_id = u.id)
        AS csv_rows,
    (SELECT count(*) FROM searches AS q WHERE q.user_id = u.id) AS searches,
    (SELECT count(*) FROM url_analyses AS a WHERE a.user_id = u.id) AS url_analyses
FROM users AS u
WHERE u.id = %(id)s;

-- name: get_credentials :one
-- The user with that email (case-insensitively) and its password hash (NULL
-- if none): the only query that reads the hash, for verify_credentials.
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password,
       u.password_hash
FROM users AS u
LEFT JOIN roles AS r ON r.id = u.role_id
WHERE lower(u.email) = lower(%(email)s);

-- name: set_password_hash :execrows
-- Store a new bcrypt hash for the user; 0 rows for an unknown user.
UPDATE users SET password_hash = %(password_hash)s WHERE id = %(id)s;

-- name: rehash_password :one
-- Replace a hash by a stronger one of the same password, after a login
-- checked it. Only if it is still the hash that was checked: a password set
-- meanwhile is not overwritten (then no row).
WITH updated AS (
    UPDATE users SET password_hash = %(new_hash)s
    WHERE id = %(id)s AND password_hash = %(old_hash)s
    RETURNING id, name, email, email_verified, image, role_id, created_at, updated_at,
              password_hash
)
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM updated AS u
LEFT JOIN roles AS r ON r.id = u.role_id;

-- name: reset_password :one
-- A password reset in one statement: consume the verification token (deleted
-- even when expired, as use_verification_token does), and only if it was
-- live, set the password of the user whose email is the token's identifier
-- (case-insensitively) and delete all of that user's sessions. Concurrent
-- resets with one token: the DELETE's row lock lets exactly one find the row.
-- The updated user, or no row (unknown, used or expired token; no such user).
WITH consumed AS (
    DELETE FROM verification_tokens
    WHERE identifier = %(identifier)s AND token_hash = %(token_hash)s
    RETURNING identifier, expires > statement_timestamp() AS is_valid
), updated AS (
    UPDATE users SET password_hash = %(password_hash)s
    FROM consumed
    WHERE consumed.is_valid AND lower(users.email) = lower(consumed.identifier)
    RETURNING users.id, users.name, users.email, users.email_verified, users.image,
              users.role_id, users.created_at, users.updated_at, users.password_hash
), signed_out AS (
    DELETE FROM sessions WHERE user_id IN (SELECT id FROM updated)
)
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM updated AS u
LEFT JOIN roles AS r ON r.id = u.role_id;

-- name: link_account :one
-- Link a provider account to a user; the pair (provider, provider_account_id)
-- is unique (accounts_provider_provider_account_id_key).
INSERT INTO accounts (
    user_id, type, provider, provider_account_id, refresh_token, access_token,
    expires_at, token_type, scope, id_token, session_state
) VALUES (
    %(user_id)s, %(type)s, %(provider)s, %(provider_account_id)s, %(refresh_token)s::text,
    %(access_token)s::text, %(expires_at)s::bigint, %(token_type)s::text, %(scope)s::text,
    %(id_token)s::text, %(session_state)s::text
)
RETURNING id, user_id, type, provider, provider_account_id, refresh_token, access_token,
          expires_at, token_type, scope, id_token, session_state;

-- name: unlink_account :execrows
-- Remove the link; the user stays.
DELETE FROM accounts
WHERE provider = %(provider)s AND provider_account_id = %(provider_account_id)s;

-- name: create_session :one
-- Store a session under the digest of its token.
INSERT INTO sessions (session_token_hash, user_id, expires)
VALUES (%(token_hash)s, %(user_id)s, %(expires)s)
RETURNING user_id, expires;

-- name: get_session_and_user :one
-- The session and its user in one statement, one round trip. A live session is
-- a plain indexed lookup; CASE evaluates lazily, so only an expired session
-- reaches delete_expired_session() (migration 0005), which deletes it and
-- returns false: the caller gets no row, and the session is gone.
-- (Were the function ever evaluated for another row, it would only delete
-- that row if expired, which prune does anyway; the planner runs the cheap
-- equality before the costly CASE.)
-- Column order matters: user_id, expires, then the fields of User in order
-- (the repository reads this row as a tuple).
SELECT s.user_id, s.expires,
       u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM sessions AS s
JOIN users AS u ON u.id = s.user_id
LEFT JOIN roles AS r ON r.id = u.role_id
WHERE s.session_token_hash = %(token_hash)s
  AND CASE WHEN s.expires > statement_timestamp() THEN true
           ELSE delete_expired_session(s.session_token_hash) END;

-- name: update_session :one
-- Move a session's expiry; no row when the token is unknown.
UPDATE sessions SET expires = %(expires)s
WHERE session_token_hash = %(token_hash)s
RETURNING user_id, expires;

-- name: delete_session :execrows
-- Sign out: forget the session.
DELETE FROM sessions WHERE session_token_hash = %(token_hash)s;

-- name: create_verification_token :one
-- Store a single-use token under its digest; (identifier, token_hash) is the key.
INSERT INTO verification_tokens (identifier, token_hash, expires)
VALUES (%(identifier)s, %(token_hash)s, %(expires)s)
RETURNING identifier, expires;

-- name: use_verification_token :one
-- Consume a token: the DELETE makes it single-use even under concurrency (a
-- second caller blocks on the row lock, then finds it gone). An expired token
-- is deleted too; is_valid tells the repository whether to hand it out.
DELETE FROM verification_tokens
WHERE identifier = %(identifier)s AND token_hash = %(token_hash)s
RETURNING identifier, expires, expires > statement_timestamp() AS is_valid;

-- name: prune_expired :one
-- Delete every expired session and verification token; the counts of each.
WITH sessions_gone AS (
    DELETE FROM sessions WHERE expires <= statement_timestamp() RETURNING 1
), tokens_gone AS (
    DELETE FROM verification_tokens WHERE expires <= statement_timestamp() RETURNING 1
)
SELECT (SELECT count(*) FROM sessions_gone) AS sessions,
       (SELECT count(*) FROM tokens_gone) AS verification_tokens;
