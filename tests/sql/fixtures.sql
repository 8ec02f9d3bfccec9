-- Rows that tests need before the repositories under test can run.

-- name: insert_user :one
INSERT INTO users (email, name) VALUES (%(email)s, %(name)s) RETURNING id;
