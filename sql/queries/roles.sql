-- Roles (RBAC): a user has at most one role, users.role_id -> roles.

-- name: get_role_id :one
-- The id of the role with that name, or no row.
SELECT id FROM roles WHERE name = %(name)s;

-- name: set_user_role :one
-- Give a user a role (or none, with a NULL role_id); no row for an unknown user.
WITH updated AS (
    UPDATE users SET role_id = %(role_id)s::integer
    WHERE id = %(user_id)s
    RETURNING id, name, email, email_verified, image, role_id, created_at, updated_at,
              password_hash
)
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM updated AS u
LEFT JOIN roles AS r ON r.id = u.role_id;

-- name: users_with_role :many
-- The users holding that role, by email.
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM users AS u
JOIN roles AS r ON r.id = u.role_id
WHERE r.id = %(role_id)s
ORDER BY lower(u.email), u.id;

-- name: list_users :many
-- Every user, by email.
SELECT u.id, u.name, u.email, u.email_verified, u.image, r.name AS role,
       u.created_at, u.updated_at, u.password_hash IS NOT NULL AS has_password
FROM users AS u
LEFT JOIN roles AS r ON r.id = u.role_id
ORDER BY lower(u.email), u.id;
