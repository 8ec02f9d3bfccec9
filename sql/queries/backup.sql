-- What `trampolin restore` and `trampolin backup verify` ask of a database.
--
-- User tables are those outside the system schemas (pg_catalog,
-- information_schema, pg_toast and the temporary schemas).

-- name: restore_target :one
-- What `trampolin restore` asks its target before pg_restore runs (through
-- psql: trampolin/psql.py): the server's version number, and whether the
-- target holds any user table (user_tables' filter); only if it does are the
-- tables listed and counted, to say what a restore would replace.
SELECT current_setting('server_version_num')::integer AS version_num,
       EXISTS (
           SELECT
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p')
             AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg\_toast%%'
             AND n.nspname NOT LIKE 'pg\_temp\_%%'
       ) AS has_tables;

-- name: fresh_session_in_utc :exec
-- After the restore script ran in psql's session (it empties search_path, among
-- others): the connection's settings back, and timestamps printed in UTC and
-- ISO form, as Python's datetime.fromisoformat reads them.
RESET ALL;
SET TIME ZONE 'UTC';
SET datestyle TO 'ISO';

-- name: user_tables :many
-- Every user table, largest first, with its size and a row estimate the way
-- the planner makes one: the density of the last ANALYZE times the current
-- pages. Never analyzed (reltuples -1, PostgreSQL 14+): the statistics'
-- live-row count, which may lag; the caller counts small tables exactly.
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       pg_relation_size(c.oid) AS bytes,
       CASE WHEN c.reltuples > 0 AND c.relpages > 0
            THEN (c.reltuples / c.relpages
                  * (pg_relation_size(c.oid) / current_setting('block_size')::integer))::bigint
            ELSE coalesce(s.n_live_tup, 0)
       END AS estimate
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%%'
  AND n.nspname NOT LIKE 'pg\_temp\_%%'
ORDER BY bytes DESC, schema_name, table_name;

-- name: count_rows :one
-- The exact number of rows of one table ({schema} and {table} are filled with
-- quoted identifiers). No query_to_xml trick: the embedded server lacks libxml.
SELECT count(*) AS rows FROM {schema}.{table};
