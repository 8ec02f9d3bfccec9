-- Seed data: the default roles. Idempotent: running it again changes nothing.
INSERT INTO roles (name, description) VALUES
    ('admin', 'Full access, including user and billing administration'),
    ('user', 'Default role for people who sign up')
ON CONFLICT (name) DO NOTHING;
