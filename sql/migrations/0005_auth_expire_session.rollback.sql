DROP FUNCTION delete_expired_session(bytea);
