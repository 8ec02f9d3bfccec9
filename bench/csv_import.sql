-- Setup and baselines for bench/csv_import.py, in a scratch schema "bench_csv".

-- name: create_schema :exec
-- The table the old app (Prisma) wrote CSV rows to: a bigint surrogate key, an
-- index on (upload_id, row_index), a per-row FK to its upload, data as jsonb.
DROP SCHEMA IF EXISTS bench_csv CASCADE;
CREATE SCHEMA bench_csv;
CREATE TABLE bench_csv.uploads (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    filename text NOT NULL
);
CREATE TABLE bench_csv.csv_row (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    upload_id bigint NOT NULL REFERENCES bench_csv.uploads (id) ON DELETE CASCADE,
    row_index integer NOT NULL,
    data jsonb NOT NULL
);
CREATE INDEX csv_row_upload_id_row_index_idx ON bench_csv.csv_row (upload_id, row_index);
INSERT INTO bench_csv.uploads (filename) VALUES ('bench.csv');

-- name: drop_schema :exec
DROP SCHEMA IF EXISTS bench_csv CASCADE;

-- name: reset_baseline :exec
TRUNCATE bench_csv.csv_row;

-- name: insert_app_row :exec
-- One row the way an ORM's createMany / executemany writes it.
INSERT INTO bench_csv.csv_row (upload_id, row_index, data)
VALUES (1, %(row_index)s, %(data)s);

-- name: count_baseline :one
SELECT count(*) AS n FROM bench_csv.csv_row;

-- name: vacuum_rows :exec
VACUUM csv_rows;

-- name: insert_user :one
INSERT INTO users (email) VALUES (%(email)s)
ON CONFLICT ((lower(email))) DO UPDATE SET email = excluded.email
RETURNING id;

-- name: copy_to_baseline :copy
-- What a DBA runs to dump the same rows: a server-side COPY TO.
COPY (
    SELECT "values" FROM csv_rows WHERE upload_id = %(upload_id)s ORDER BY row_index
) TO STDOUT (FORMAT csv);

-- name: copy_rows_binary :copy
-- The same rows in COPY's binary format (for --variants: psycopg write_row).
COPY csv_rows (upload_id, row_index, "values") FROM STDIN (FORMAT BINARY);
