-- Roles and users: the RBAC core and the Auth.js User model.
--
-- users.email is unique case-insensitively (an index on lower(email)), because
-- services and admins do not always lowercase addresses. Every table keeps
-- updated_at current through one shared trigger function, as Prisma's
-- @updatedAt did, so that hand-written SQL keeps it true as well.

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION set_updated_at() IS
    'BEFORE UPDATE trigger: stamps updated_at with the transaction time.';

CREATE TABLE roles (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT roles_name_key UNIQUE (name),
    CONSTRAINT roles_name_format CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$')
);

COMMENT ON TABLE roles IS 'RBAC roles; a user has at most one. Seeded: admin, user.';
COMMENT ON COLUMN roles.name IS 'Stable identifier used by code and the CLI (lower snake_case).';

CREATE TRIGGER roles_set_updated_at BEFORE UPDATE ON roles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE users (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text,
    email              text NOT NULL,
    email_verified     timestamptz,
    image              text,
    role_id            integer REFERENCES roles (id) ON DELETE SET NULL,
    stripe_customer_id text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_stripe_customer_id_key UNIQUE (stripe_customer_id)
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_role_id_idx ON users (role_id) WHERE role_id IS NOT NULL;

COMMENT ON TABLE users IS 'People who sign in (the Auth.js User model).';
COMMENT ON COLUMN users.email IS 'Unique case-insensitively (index users_email_key on lower(email)); stored as given.';
COMMENT ON COLUMN users.email_verified IS 'When the address was verified (Auth.js emailVerified); NULL if never.';
COMMENT ON COLUMN users.role_id IS 'The user''s single role, or NULL; set NULL if the role is deleted.';
COMMENT ON COLUMN users.stripe_customer_id IS 'Stripe customer (cus_...) linked to this user; unique.';

CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
