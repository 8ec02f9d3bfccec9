DROP TABLE users;
DROP TABLE roles;
DROP FUNCTION set_updated_at();
