-- What `trampolin dump`, `restore` and `backup verify` ask of a database.
--
-- User tables are those outside the system schemas (pg_catalog,
-- information_schema, pg_toast and the temporary schemas).

-- name: user_tables :many
-- Every user table, largest first: its size (heap and TOAST, what a dump
-- reads: the weight of each table in dump's progress bar) and a row estimate
-- the way the planner makes one: the density of the last ANALYZE times the
-- current pages. Never analyzed (reltuples -1, PostgreSQL 14+): the
-- statistics' live-row count, which may lag; the caller counts small tables
-- exactly.
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       pg_table_size(c.oid) AS bytes,
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

-- name: abandoned_scratch_databases :many
-- The scratch databases of `backup verify` (trampolin_verify_<pid>_<hex>, and
-- its reference, the same name with _ref) whose verify has ended without
-- dropping them: while it runs, a verify holds a session whose
-- application_name is the scratch database's name, and the server ends that
-- session when the process dies, however it dies. A pair that any session
-- still uses (a killed verify's pg_restore and psql run on to their end) is
-- left for a later run. Only those this role may drop.
SELECT d.datname AS name
FROM pg_database d
WHERE d.datname LIKE 'trampolin\_verify\_%%'
  AND pg_has_role(d.datdba, 'MEMBER')
  AND NOT EXISTS (
      SELECT
      FROM pg_stat_activity a
      WHERE regexp_replace(d.datname, '_ref$', '')
            IN (a.application_name, regexp_replace(a.datname, '_ref$', ''))
  )
ORDER BY d.datname;

-- name: drop_unused_database :exec
-- Drop a database, unless a session uses it (ObjectInUse).
DROP DATABASE IF EXISTS {database};
