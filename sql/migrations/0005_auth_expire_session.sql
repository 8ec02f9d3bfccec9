-- Auth: delete_expired_session(), so that reading a session can remove it when expired.
--
-- get_session_and_user (sql/queries/auth.sql) is one plain SELECT whose WHERE
-- clause reads CASE WHEN expires > statement_timestamp() THEN true ELSE
-- delete_expired_session(session_token_hash) END. CASE evaluates lazily, so a
-- live session costs the bare lookup (no data-modifying CTE, which made every
-- lookup a write statement and about 10% slower), and only an expired one
-- calls this function, which deletes it and returns false to drop the row.

CREATE FUNCTION delete_expired_session(token_hash bytea) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    DELETE FROM sessions
    WHERE session_token_hash = token_hash AND expires <= statement_timestamp();
    RETURN false;
END;
$$;

COMMENT ON FUNCTION delete_expired_session(bytea) IS
    'Deletes the session with that token digest if it has expired; always false, to filter the row out.';
