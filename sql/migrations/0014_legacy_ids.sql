-- Legacy ids: rows taken over from the Prisma-made app database keep resolving by their old ids.
--
-- `trampolin adopt prisma` gives each adopted user the UUID legacy_uuid(cuid):
-- the first 16 bytes of sha256('trampolin legacy id:' || cuid), marked as a
-- version 8 (custom) UUID. trampolin.values.user_key computes the same UUID in
-- Python for any user id that is not a UUID, so a JWT "sub", a Stripe
-- metadata.user_id or a link holding the old cuid finds the user with no
-- lookup table and no change to any foreign key. The version nibble (8) keeps
-- these ids apart from gen_random_uuid()'s (4). An old id that already is a
-- UUID in standard form is kept as that UUID. The prefix can never change:
-- every adopted id depends on it. docs/adopt.md says why this design.
--
-- legacy_id keeps the old id for DBAs (and csv_uploads, whose ids are bigint,
-- are looked up by it); NULL for rows trampolin made itself.

CREATE FUNCTION legacy_uuid(legacy_id text) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    digest bytea;
BEGIN
    IF legacy_id ~ '^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$' THEN
        RETURN legacy_id::uuid;
    END IF;
    digest := substring(sha256(convert_to('trampolin legacy id:' || legacy_id, 'UTF8')) FROM 1 FOR 16);
    digest := set_byte(digest, 6, get_byte(digest, 6) & 15 | 128);  -- version 8
    digest := set_byte(digest, 8, get_byte(digest, 8) & 63 | 128);  -- RFC 9562 variant
    RETURN encode(digest, 'hex')::uuid;
END;
$$;

COMMENT ON FUNCTION legacy_uuid(text) IS
    'The UUID an adopted row got for its old (Prisma) id; the same as trampolin.values.legacy_uuid.';

ALTER TABLE users
    ADD COLUMN legacy_id text,
    ADD CONSTRAINT users_legacy_id_key UNIQUE (legacy_id),
    ADD CONSTRAINT users_legacy_id_check CHECK (legacy_id IS NULL OR id = legacy_uuid(legacy_id));

COMMENT ON COLUMN users.legacy_id IS
    'The user''s id in the Prisma-made app database (a cuid); id = legacy_uuid(legacy_id). NULL if made here.';

ALTER TABLE csv_uploads
    ADD COLUMN legacy_id text,
    ADD CONSTRAINT csv_uploads_legacy_id_key UNIQUE (legacy_id);

COMMENT ON COLUMN csv_uploads.legacy_id IS
    'The upload''s id in the Prisma-made app database (a cuid); CsvUploads.get finds it by this. NULL if made here.';
