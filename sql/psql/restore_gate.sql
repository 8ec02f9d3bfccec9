-- trampolin restore's gate, run by psql just before pg_restore's script (which
-- begins with BEGIN): the restore_target query (sql/queries/backup.sql) has set
-- :version_num and :has_tables, trampolin has set :tool_version_num, the version
-- of the pg_restore writing the script (psql's own VERSION_NUM: they come from
-- one directory, one build). go is true only if the target holds no table and
-- that pg_restore suits the server: as new as it, and no transaction_timeout
-- line (pg_restore 17+) for a server before 17.
SELECT NOT :'has_tables'::boolean
       AND :version_num / 10000 <= :tool_version_num / 10000
       AND NOT (:tool_version_num >= 170000 AND :version_num < 170000) AS go
