-- What `trampolin restore` asks of its target before pg_restore starts, run through
-- psql (psql -XAtq -f), so that a restore need not load psycopg first: the server's
-- version number and whether the target holds any user table, as `150020|t`.
-- The same filter as user_tables in sql/queries/backup.sql; when there are tables,
-- backup.user_tables then counts their rows.
SELECT current_setting('server_version_num')::integer AS version_num,
       EXISTS (
           SELECT
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p')
             AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg\_toast%'
             AND n.nspname NOT LIKE 'pg\_temp\_%'
       ) AS has_tables;
