-- Statements for tests/test_psql.py: answers that CSV has to quote, and failures.

-- name: awkward_rows :many
SELECT n, v
FROM (VALUES (1, 'a,b'), (2, E'say "hi"\nthere'), (3, NULL)) AS t (n, v)
ORDER BY n;

-- name: no_rows :many
SELECT 1 WHERE false;

-- name: ends_in_a_comment :one
SELECT 'x' AS answer -- no semicolon, and a comment where it would go

-- name: ends_in_a_commented_semicolon :one
SELECT 'y' AS answer -- done;

-- name: fails :one
SELECT 1 / 0;

-- name: never_ends :one
-- An unterminated dollar quote: psql waits for the rest, and never answers.
SELECT $$abc

-- name: big_output :many
-- More than a pipe holds (64 kB): what a restore script's SELECTs may print.
SELECT repeat('x', 1000) FROM generate_series(1, 200);
