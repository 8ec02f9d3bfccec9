-- Data for bench/backup.py: one user, BENCH_ROWS / 1,000 uploads of 1,000 rows each.

-- name: fill_user :exec
INSERT INTO users (id, email, name)
VALUES ('00000000-0000-0000-0000-00000000b001', 'bench@example.com', 'Bench');

-- name: fill_uploads :exec
-- One upload per 1,000 rows (1,000 uploads for the default 1M rows).
INSERT INTO csv_uploads (user_id, filename, status, headers, total_rows, file_size)
SELECT '00000000-0000-0000-0000-00000000b001', 'upload_' || u || '.csv', 'completed',
       ARRAY['id', 'email', 'name', 'city', 'amount', 'date'], 1000, 90000
FROM generate_series(1, %(uploads)s) AS u;

-- name: fill_rows :exec
-- 1,000 csv_rows per upload in one INSERT ... SELECT, shaped like a customer
-- export: id, email, name, city, amount, date. random() keeps it about as
-- compressible as real data (a constant pattern would gzip to nothing).
INSERT INTO csv_rows (upload_id, row_index, "values")
SELECT up.id, r,
       ARRAY[(up.id * 1000 + r)::text,
             'user' || (random() * 1e7)::bigint || '@example.com',
             initcap(substr(md5(random()::text), 1, 6 + (random() * 6)::int)),
             (ARRAY['Zürich', 'Bern', 'Genève', 'Basel', 'Lugano', 'Chur'])[1 + (random() * 5)::int],
             to_char(random() * 10000, 'FM99990.00'),
             (date '2024-01-01' + (random() * 700)::int)::text]
FROM csv_uploads AS up, generate_series(1, 1000) AS r;

-- name: csv_row_count :one
SELECT count(*) AS n FROM csv_rows;

-- name: checkpoint :exec
-- Before each timed run: flush what the previous run left dirty.
CHECKPOINT;
