-- Statements of trampolin.db itself.

-- name: begin_implicit :exec
-- Opens the implicit transaction of a non-autocommit connection that is idle,
-- so that the next conn.transaction() is a savepoint instead of a transaction
-- that commits at its end (see trampolin.db.atomic).
SELECT 1;
