-- CSV uploads and their rows, designed for bulk loading with COPY.
--
-- csv_rows is the layer's largest table, and loading it is the hot path, so
-- each row costs as little as possible to write:
--   * the key is (upload_id, row_index): no surrogate id, one btree;
--   * the values are a text[] in the file's column order (the names live once,
--     in csv_uploads.headers): an array is about half the cost of building a
--     jsonb object per row;
--   * no per-row foreign key check to csv_uploads (about a third of load time):
--     rows are only written by the importer, inside the transaction that owns
--     the upload, and a trigger deletes an upload's rows with it, so the cascade
--     from users -> csv_uploads -> csv_rows still holds.
-- DBAs query rows by column name through the csv_rows_named view.

CREATE TABLE csv_uploads (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename      text NOT NULL,
    status        text NOT NULL DEFAULT 'pending',
    headers       text[] NOT NULL DEFAULT '{}',
    total_rows    bigint NOT NULL DEFAULT 0,
    file_size     bigint NOT NULL DEFAULT 0,
    error_message text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT csv_uploads_status_check CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    CONSTRAINT csv_uploads_total_rows_check CHECK (total_rows >= 0),
    CONSTRAINT csv_uploads_file_size_check CHECK (file_size >= 0)
);

CREATE INDEX csv_uploads_user_id_idx ON csv_uploads (user_id, id);
CREATE INDEX csv_uploads_processing_idx ON csv_uploads (updated_at) WHERE status = 'processing';

COMMENT ON TABLE csv_uploads IS 'One uploaded CSV file: its header row, size, row count and import status.';
COMMENT ON COLUMN csv_uploads.status IS 'pending -> processing -> completed | failed. A failed upload has no rows.';
COMMENT ON COLUMN csv_uploads.headers IS 'Column names from the header row, in file order; csv_rows.values follow this order.';
COMMENT ON COLUMN csv_uploads.total_rows IS 'Number of data rows loaded (the header row not counted).';
COMMENT ON COLUMN csv_uploads.file_size IS 'Size of the uploaded file in bytes.';
COMMENT ON COLUMN csv_uploads.error_message IS 'Why the import failed, naming the physical line of the file.';

CREATE TRIGGER csv_uploads_set_updated_at BEFORE UPDATE ON csv_uploads
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE csv_rows (
    upload_id bigint NOT NULL,
    row_index integer NOT NULL,
    "values"  text[] NOT NULL,
    PRIMARY KEY (upload_id, row_index),
    CONSTRAINT csv_rows_row_index_check CHECK (row_index > 0)
);

COMMENT ON TABLE csv_rows IS 'Data rows of csv_uploads, one per CSV record; query by name through csv_rows_named.';
COMMENT ON COLUMN csv_rows.upload_id IS 'The csv_uploads row (no FK check per row: see the csv_uploads_delete_rows trigger).';
COMMENT ON COLUMN csv_rows.row_index IS '1-based position of the record among the file''s data rows.';
COMMENT ON COLUMN csv_rows."values" IS 'Field values in csv_uploads.headers order; empty fields are '''' (never NULL).';

CREATE FUNCTION csv_uploads_delete_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM csv_rows WHERE upload_id = OLD.id;
    RETURN OLD;
END;
$$;

COMMENT ON FUNCTION csv_uploads_delete_rows() IS
    'Cascades a csv_uploads delete to its csv_rows (csv_rows has no FK, for load speed).';

CREATE TRIGGER csv_uploads_delete_rows AFTER DELETE ON csv_uploads
    FOR EACH ROW EXECUTE FUNCTION csv_uploads_delete_rows();

CREATE VIEW csv_rows_named AS
SELECT r.upload_id,
       r.row_index,
       jsonb_object(u.headers, r."values") AS data
FROM csv_rows r
JOIN csv_uploads u ON u.id = r.upload_id;

COMMENT ON VIEW csv_rows_named IS
    'csv_rows with each value under its column name: SELECT data->>''email'' FROM csv_rows_named WHERE upload_id = 42.';
