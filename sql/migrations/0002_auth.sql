-- Auth.js (NextAuth) models: accounts, sessions, verification tokens.
--
-- Session and verification tokens are bearer secrets: the tables hold their
-- SHA-256 digests only (32 bytes), so a leaked dump or replica cannot be used
-- to sign in. The repository hashes the caller's token on every lookup.

CREATE TABLE accounts (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type                text NOT NULL,
    provider            text NOT NULL,
    provider_account_id text NOT NULL,
    refresh_token       text,
    access_token        text,
    expires_at          bigint,
    token_type          text,
    scope               text,
    id_token            text,
    session_state       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_provider_provider_account_id_key UNIQUE (provider, provider_account_id)
);

CREATE INDEX accounts_user_id_idx ON accounts (user_id);

COMMENT ON TABLE accounts IS 'OAuth / credential accounts linked to a user (the Auth.js Account model).';
COMMENT ON COLUMN accounts.type IS 'Auth.js account type: oauth, oidc, email, webauthn or credentials.';
COMMENT ON COLUMN accounts.expires_at IS 'Access token expiry in seconds since the Unix epoch, as the provider gives it.';

CREATE TRIGGER accounts_set_updated_at BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE sessions (
    session_token_hash bytea PRIMARY KEY,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires            timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sessions_session_token_hash_length CHECK (octet_length(session_token_hash) = 32)
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires);

COMMENT ON TABLE sessions IS 'Database sessions (the Auth.js Session model); tokens stored hashed.';
COMMENT ON COLUMN sessions.session_token_hash IS 'SHA-256 of the session token; the token itself is never stored.';

CREATE TRIGGER sessions_set_updated_at BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE verification_tokens (
    identifier text NOT NULL,
    token_hash bytea NOT NULL,
    expires    timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (identifier, token_hash),
    CONSTRAINT verification_tokens_token_hash_length CHECK (octet_length(token_hash) = 32)
);

CREATE INDEX verification_tokens_expires_idx ON verification_tokens (expires);

COMMENT ON TABLE verification_tokens IS 'Single-use sign-in tokens (magic links); tokens stored hashed.';
COMMENT ON COLUMN verification_tokens.identifier IS 'Who the token is for, usually an email address.';
COMMENT ON COLUMN verification_tokens.token_hash IS 'SHA-256 of the token; the token itself is never stored.';
