-- What `trampolin restore` and `trampolin backup verify` ask of a database.
--
-- User tables are those outside the system schemas (pg_catalog,
-- information_schema, pg_toast and the temporary schemas).

-- name: user_tables :many
-- Every user table with an estimate of its rows, largest first: what a
-- restore with --clean would replace. reltuples is -1 until the first
-- ANALYZE (PostgreSQL 14+), so the statistics' live-row count stands in.
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint
            ELSE coalesce(s.n_live_tup, 0)
       END AS rows
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%%'
  AND n.nspname NOT LIKE 'pg\_temp\_%%'
ORDER BY rows DESC, schema_name, table_name;

-- name: table_row_counts :many
-- The exact row count of every user table (a count(*) each, run through
-- query_to_xml so that the table names are quoted by format(%%I) in SQL).
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       (xpath('/row/n/text()',
              query_to_xml(format('SELECT count(*) AS n FROM %%I.%%I', n.nspname, c.relname),
                           false, true, '')))[1]::text::bigint AS rows
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%%'
  AND n.nspname NOT LIKE 'pg\_temp\_%%'
ORDER BY schema_name, table_name;
