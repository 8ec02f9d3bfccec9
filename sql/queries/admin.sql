-- Server-level statements used by the CLI and the test harness.

-- name: database_exists :one
-- One row when a database of that name exists on the server.
SELECT 1 AS found FROM pg_database WHERE datname = %(name)s;

-- name: create_database :exec
-- A new, empty database ({database} is filled with a quoted identifier).
CREATE DATABASE {database};

-- name: server_version :one
-- The server's version number (e.g. 150020) and display string.
SELECT current_setting('server_version_num')::integer AS version_num,
       current_setting('server_version') AS version;

-- name: drop_database :exec
-- Drop a database even while clients are connected (tests and scratch restores).
DROP DATABASE IF EXISTS {database} WITH (FORCE);

-- name: client_endpoint :one
-- The client address and port as the server sees them (NULL over a Unix socket).
SELECT inet_client_addr()::text AS addr, inet_client_port() AS port;

-- name: backend_pid :one
-- The server process serving this session (changes between transactions behind
-- a transaction-mode pooler).
SELECT pg_backend_pid() AS pid;

-- name: sleep :one
-- Sleep on the server (used to check timeouts).
SELECT pg_sleep(%(seconds)s) AS slept;

-- name: terminate_backend :one
-- End another session (tests of dead pooled connections).
SELECT pg_terminate_backend(%(pid)s) AS terminated;
