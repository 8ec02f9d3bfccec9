-- Users: password_hash, so that people sign in with e-mail and password.
--
-- The web app hashed passwords with Node's bcrypt (cost 12; an older register
-- route used 10) into User.passwordHash; this column holds the same strings,
-- and trampolin.auth verifies and writes them (docs/auth.md). NULL means no
-- password: the user signs in some other way (OAuth, a magic link). The check
-- admits only the bcrypt hashes that can be verified, so that nothing else (a
-- plaintext password, say) can be stored by mistake.

ALTER TABLE users ADD COLUMN password_hash text;

ALTER TABLE users ADD CONSTRAINT users_password_hash_format
    CHECK (password_hash ~ '^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$');

COMMENT ON COLUMN users.password_hash IS
    'bcrypt hash ($2a$/$2b$/$2y$, as Node''s bcrypt and bcryptjs write it) of the password; NULL if the user has none. Never returned by trampolin.';
