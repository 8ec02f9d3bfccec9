"""The Auth.js (NextAuth) adapter contract in Python, on the app's own tables, plus
passwords (e-mail and password login, reset) and roles.

``AuthAdapter(conn)`` (and ``AsyncAuthAdapter(aconn)``, awaited) does what
Auth.js's Prisma adapter did, in snake_case. Session and verification tokens
are stored as SHA-256 digests only: every method hashes the caller's raw
token, and returned objects carry that raw token back. Passwords are bcrypt
hashes (trampolin.passwords) that never leave this module. Unknown ids, tokens
and accounts give None; constraint clashes raise Conflict, bad values
InvalidInput, unknown roles NotFound. Writes run in ``db.atomic``: never a
commit or rollback of the caller's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg import errors as pgerrors

from trampolin import passwords, queries
from trampolin.auth_records import (
    Account,
    Pruned,
    Session,
    User,
    UserDependents,
    VerificationToken,
    hash_token,
    token_digest,
    translate_error,
    write_id,
)
from trampolin.db import atomic, run_blocking
from trampolin.errors import InvalidInput, NotFound
from trampolin.values import (
    aware_time,
    email_address,
    optional_aware_time,
    optional_text,
    text,
    user_key,
)

__all__ = [
    "UPDATABLE_USER_FIELDS",
    "Account",
    "AsyncAuthAdapter",
    "AuthAdapter",
    "Pruned",
    "Session",
    "User",
    "UserDependents",
    "VerificationToken",
    "hash_token",
    "prune_expired",
]

_auth = queries.load("auth")
_roles = queries.load("roles")

#: The fields ``update_user`` accepts (role goes through ``set_role``).
UPDATABLE_USER_FIELDS = ("name", "email", "email_verified", "image")


class AsyncAuthAdapter:
    """Users, passwords, accounts, sessions, verification tokens and roles on one connection."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn

    # -- users ---------------------------------------------------------------

    async def create_user(
        self,
        *,
        email: str,
        name: str | None = None,
        image: str | None = None,
        email_verified: datetime | None = None,
        password: str | None = None,
    ) -> User:
        """A new user with no role; Conflict if the email is taken (in any case).

        ``password`` (optional) must pass the policy (InvalidPassword); only its hash is stored.
        """
        params = {
            "email": email_address(email),
            "name": optional_text("name", name),
            "image": optional_text("image", image),
            "email_verified": optional_aware_time("email_verified", email_verified),
            "password_hash": None if password is None else await self._new_hash(password),
        }
        try:
            async with atomic(self.conn):
                row = await _auth.create_user.one(self.conn, **params)
        except psycopg.Error as exc:
            translate_error(exc, params)
        assert row is not None
        return User(**row)

    async def get_user(self, id: uuid.UUID | str) -> User | None:
        """The user with that id, or None."""
        user_id = user_key(id)
        if user_id is None:
            return None
        row = await _auth.get_user.one(self.conn, id=user_id)
        return User(**row) if row else None

    async def get_user_by_email(self, email: str) -> User | None:
        """The user with that email, compared case-insensitively, or None."""
        row = await _auth.get_user_by_email.one(self.conn, email=text("email", email))
        return User(**row) if row else None

    async def get_user_by_account(self, provider: str, provider_account_id: str) -> User | None:
        """The user who linked that provider account, or None."""
        row = await _auth.get_user_by_account.one(
            self.conn,
            provider=text("provider", provider),
            provider_account_id=text("provider_account_id", provider_account_id),
        )
        return User(**row) if row else None

    async def update_user(self, id: uuid.UUID | str, **fields: Any) -> User | None:
        """Change only the given fields (None clears one); None if the user is unknown."""
        unknown = sorted(set(fields) - set(UPDATABLE_USER_FIELDS))
        if unknown:
            raise InvalidInput(
                f"update_user: unknown field(s) {', '.join(unknown)} "
                f"(allowed: {', '.join(UPDATABLE_USER_FIELDS)}; use set_role for the role)"
            )
        user_id = user_key(id)
        if user_id is None:
            return None
        if not fields:
            return await self.get_user(user_id)  # nothing to change: do not touch updated_at
        if "email" in fields and fields["email"] is None:
            raise InvalidInput("email cannot be cleared: every user has one")
        params: dict[str, Any] = {"id": user_id}
        for column in UPDATABLE_USER_FIELDS:
            params[f"set_{column}"] = column in fields
            value = fields.get(column)
            if column == "email_verified":
                params[column] = optional_aware_time(column, value)
            elif column == "email" and column in fields:
                params[column] = email_address(value)
            else:
                params[column] = optional_text(column, value)
        try:
            async with atomic(self.conn):
                row = await _auth.update_user.one(self.conn, **params)
        except psycopg.Error as exc:
            translate_error(exc, params)
        return User(**row) if row else None

    async def delete_user(self, id: uuid.UUID | str) -> None:
        """Delete the user and all that is theirs (see user_dependents); nothing if unknown."""
        user_id = user_key(id)
        if user_id is None:
            return
        async with atomic(self.conn):
            await _auth.delete_user.execrows(self.conn, id=user_id)

    async def user_dependents(self, id: uuid.UUID | str) -> UserDependents | None:
        """What delete_user would take with that user (counts); None if unknown."""
        user_id = user_key(id)
        row = None if user_id is None else await _auth.user_dependents.one(self.conn, id=user_id)
        return UserDependents(**{k: int(v) for k, v in row.items()}) if row else None

    # -- passwords -----------------------------------------------------------

    async def set_password(self, user_id: uuid.UUID | str, password: str) -> None:
        """A new password (sessions stay); NotFound if the user is unknown, InvalidPassword."""
        target = write_id(user_id)
        password_hash = await self._new_hash(password)
        async with atomic(self.conn):
            found = await _auth.set_password_hash.execrows(
                self.conn, id=target, password_hash=password_hash
            )
        if not found:
            raise NotFound(f"no user with id {target}")

    async def verify_credentials(self, email: str, password: str) -> User | None:
        """The user with that e-mail (any case) and password; None for an unknown e-mail,
        a user without a password, or a wrong password: all at the same bcrypt cost, so
        time tells no e-mails apart. A hash below the configured cost is renewed here.
        """
        address = text("email", email)
        secret = passwords.login_password(password)
        cost = passwords.configured_cost()
        row = await _auth.get_credentials.one(self.conn, email=address)
        stored = None if row is None else row.pop("password_hash")
        verdict = await run_blocking(self.conn, passwords.verify, secret, stored, cost)
        if row is None or not verdict.ok:
            return None
        if verdict.new_hash is not None:
            try:
                async with atomic(self.conn):
                    rehashed = await _auth.rehash_password.one(
                        self.conn, id=row["id"], old_hash=stored, new_hash=verdict.new_hash
                    )
                row = rehashed or row
            except pgerrors.ReadOnlySqlTransaction:
                pass  # a read-only transaction (a replica): rehash at a later login
        return User(**row)

    async def reset_password(self, identifier: str, token: str, new_password: str) -> User | None:
        """Consume the token, set the password of the user whose e-mail is ``identifier``
        and delete all their sessions, at once; the user, or None if the token is unknown,
        used or expired. A refused password (InvalidPassword) leaves the token unused.
        """
        params = {
            "identifier": text("identifier", identifier),
            "token_hash": token_digest("token", token),
            "password_hash": await self._new_hash(new_password),
        }
        async with atomic(self.conn):
            row = await _auth.reset_password.one(self.conn, **params)
        return User(**row) if row else None

    async def _new_hash(self, password: object) -> str:
        """The bcrypt hash of a new password, made in a worker thread on the async side."""
        secret = passwords.new_password(password)
        cost = passwords.configured_cost()
        return await run_blocking(self.conn, passwords.hash_password, secret, cost)

    # -- accounts ------------------------------------------------------------

    async def link_account(
        self,
        *,
        user_id: uuid.UUID | str,
        type: str,
        provider: str,
        provider_account_id: str,
        refresh_token: str | None = None,
        access_token: str | None = None,
        expires_at: int | None = None,
        token_type: str | None = None,
        scope: str | None = None,
        id_token: str | None = None,
        session_state: str | None = None,
    ) -> Account:
        """Link a provider account; Conflict if (provider, provider_account_id) is taken."""
        if expires_at is not None and (
            not isinstance(expires_at, int) or isinstance(expires_at, bool)
        ):
            raise InvalidInput(f"expires_at must be an integer (seconds), not {expires_at!r}")
        params = {
            "user_id": write_id(user_id),
            "type": text("type", type),
            "provider": text("provider", provider),
            "provider_account_id": text("provider_account_id", provider_account_id),
            "refresh_token": optional_text("refresh_token", refresh_token),
            "access_token": optional_text("access_token", access_token),
            "expires_at": expires_at,
            "token_type": optional_text("token_type", token_type),
            "scope": optional_text("scope", scope),
            "id_token": optional_text("id_token", id_token),
            "session_state": optional_text("session_state", session_state),
        }
        try:
            async with atomic(self.conn):
                row = await _auth.link_account.one(self.conn, **params)
        except psycopg.Error as exc:
            translate_error(exc, params)
        assert row is not None
        return Account(**row)

    async def unlink_account(self, provider: str, provider_account_id: str) -> None:
        """Remove that account link (the user stays); nothing if unknown."""
        params = {
            "provider": text("provider", provider),
            "provider_account_id": text("provider_account_id", provider_account_id),
        }
        async with atomic(self.conn):
            await _auth.unlink_account.execrows(self.conn, **params)

    # -- sessions ------------------------------------------------------------

    async def create_session(
        self, *, session_token: str, user_id: uuid.UUID | str, expires: datetime
    ) -> Session:
        """A new session, stored under the token's hash; Conflict if the token is in use."""
        params = {
            "token_hash": token_digest("session_token", session_token),
            "user_id": write_id(user_id),
            "expires": aware_time("expires", expires),
        }
        try:
            async with atomic(self.conn):
                row = await _auth.create_session.one(self.conn, **params)
        except psycopg.Error as exc:
            translate_error(exc, params)
        assert row is not None
        return Session(session_token, row["user_id"], row["expires"])

    async def get_session_and_user(self, session_token: str) -> tuple[Session, User] | None:
        """The live session and its user in one round trip; None if unknown or expired.

        An expired session is deleted by the same statement. No savepoint: one
        statement is atomic, and validated input cannot fail it (except that
        deleting an expired session fails in a read-only transaction).
        """
        row = await _auth.get_session_and_user.one_tuple(
            self.conn, token_hash=token_digest("session_token", session_token)
        )
        if row is None:
            return None
        # The hot path reads a tuple row, not a dict: user_id, expires, then the
        # fields of User in order (the query keeps that order).
        return Session(session_token, row[0], row[1]), User(*row[2:])

    async def update_session(self, session_token: str, *, expires: datetime) -> Session | None:
        """Move the session's expiry; None if the token is unknown."""
        params = {
            "token_hash": token_digest("session_token", session_token),
            "expires": aware_time("expires", expires),
        }
        async with atomic(self.conn):
            row = await _auth.update_session.one(self.conn, **params)
        return Session(session_token, row["user_id"], row["expires"]) if row else None

    async def delete_session(self, session_token: str) -> None:
        """Forget the session (sign out); nothing if unknown."""
        token_hash = token_digest("session_token", session_token)
        async with atomic(self.conn):
            await _auth.delete_session.execrows(self.conn, token_hash=token_hash)

    # -- verification tokens -------------------------------------------------

    async def create_verification_token(
        self, *, identifier: str, token: str, expires: datetime
    ) -> VerificationToken:
        """Store a single-use token (hashed); Conflict if that identifier already has it."""
        params = {
            "identifier": text("identifier", identifier),
            "token_hash": token_digest("token", token),
            "expires": aware_time("expires", expires),
        }
        try:
            async with atomic(self.conn):
                row = await _auth.create_verification_token.one(self.conn, **params)
        except psycopg.Error as exc:
            translate_error(exc, params)
        assert row is not None
        return VerificationToken(row["identifier"], token, row["expires"])

    async def use_verification_token(self, identifier: str, token: str) -> VerificationToken | None:
        """Consume the token: the first caller gets it, later ones None; expired gives None.

        An expired token is deleted as well (unlike Auth.js core, which would
        report "expired": here it is simply unusable). Inside a caller's
        transaction, a concurrent caller waits for that transaction to end.
        """
        params = {
            "identifier": text("identifier", identifier),
            "token_hash": token_digest("token", token),
        }
        async with atomic(self.conn):
            row = await _auth.use_verification_token.one(self.conn, **params)
        if row is None or not row["is_valid"]:
            return None
        return VerificationToken(row["identifier"], token, row["expires"])

    # -- roles ---------------------------------------------------------------

    async def set_role(self, user_id: uuid.UUID | str, role_name: str | None) -> User | None:
        """Give the user that role (None removes it); None if the user is unknown.

        NotFound if no role has that name.
        """
        target = user_key(user_id)
        async with atomic(self.conn):
            role_id = None if role_name is None else await self._role_id(role_name)
            if target is None:
                return None
            try:
                row = await _roles.set_user_role.one(self.conn, user_id=target, role_id=role_id)
            except pgerrors.ForeignKeyViolation:  # the role was deleted meanwhile
                raise NotFound(f"no role named {role_name!r}") from None
        return User(**row) if row else None

    async def users_with_role(self, name: str) -> list[User]:
        """The users holding that role, by email; NotFound if no role has that name."""
        rows = await _roles.users_with_role.many(self.conn, role_id=await self._role_id(name))
        return [User(**row) for row in rows]

    async def list_users(self) -> list[User]:
        """Every user, by email."""
        return [User(**row) for row in await _roles.list_users.many(self.conn)]

    async def _role_id(self, name: str) -> int:
        row = await _roles.get_role_id.one(self.conn, name=text("role", name))
        if row is None:
            raise NotFound(f"no role named {name!r} (seeded roles: admin, user)")
        return int(row["id"])

    # -- maintenance ---------------------------------------------------------

    async def prune_expired(self) -> Pruned:
        """Delete every expired session and verification token (for a cron job)."""
        async with atomic(self.conn):
            row = await _auth.prune_expired.one(self.conn)
        assert row is not None
        return Pruned(int(row["sessions"]), int(row["verification_tokens"]))


def prune_expired(conn: Connection[Any]) -> Pruned:
    """Delete every expired session and verification token; the counts."""
    return AuthAdapter(conn).prune_expired()


# -- Sync twins: generated from the Async classes above by tools/async_to_sync.py --


class AuthAdapter:
    """Users, passwords, accounts, sessions, verification tokens and roles on one connection."""

    def __init__(self, conn: Connection[Any]) -> None:
        self.conn = conn

    # -- users ---------------------------------------------------------------

    def create_user(
        self,
        *,
        email: str,
        name: str | None = None,
        image: str | None = None,
        email_verified: datetime | None = None,
        password: str | None = None,
    ) -> User:
        """A new user with no role; Conflict if the email is taken (in any case).

        ``password`` (optional) must pass the policy (InvalidPassword); only its hash is stored.
        """
        params = {
            "email": email_address(email),
            "name": optional_text("name", name),
            "image": optional_text("image", image),
            "email_verified": optional_aware_time("email_verified", email_verified),
            "password_hash": None if password is None else self._new_hash(password),
        }
        try:
            with atomic(self.conn):
                row = _auth.create_user.one(self.conn, **params)
        except psycopg.Error as exc:
            translate_error(exc, params)
        assert row is not None
        return User(**row)

    def get_user(self, id: uuid.UUID | str) -> User | None:
        """The user with that id, or None."""
        user_id = user_key(id)
        if user_id is None:
            return None
        row = _auth.get_user.one(self.conn, id=user_id)
        return User(**row) if row else None

    def get_user_by_email(self, email: str) -> User | None:
        """The user with that email, compared case-insensitively, or None."""
        row = _auth.get_user_by_email.one(self.conn, email=text("email", email))
        return User(**row) if row else None

    def get_user_by_account(self, provider: str, provider_account_id: str) -> User | None:
        """The user who linked that provider account, or None."""
        row = _auth.get_user_by_account.one(
            self.conn,
            provider=text("provider", provider),
            provider_account_id=text("provider_account_id", provider_account_id),
        )
        return User(**row) if row else None

    def update_user(self, id: uuid.UUID | str, **fields: Any) -> User | None:
        """Change only the given fields (None clears one); None if the user is unknown."""
        unknown = sorted(set(fields) - set(UPDATABLE_USER_FIELDS))
        if unknown:
            raise InvalidInput(
                f"update_user: unknown field(s) {', '.join(unknown)} "
                f"(allowed: {', '.join(UPDATABLE_USER_FIELDS)}; use set_role for the role)"
            )
        user_id = user_key(id)
        if user_id is None:
            return None
        if not fields:
            return self.get_user(user_id)  # nothing to change: do not touch updated_at
        if "email" in fields and fields["email"] is None:
            raise InvalidInput("email cannot be cleared: every user has one")
        params: dict[str, Any] = {"id": user_id}
        for column in UPDATABLE_USER_FIELDS:
            params[f"set_{column}"] = column in fields
            value = fields.get(column)
            if column == "email_verified":
                params[column] = optional_aware_time(column, value)
            elif column == "email" and column in fields:
                params[column] = email_address(value)
            else:
                params[column] = optional_text(column, value)
        try:
            with atomic(self.conn):
                row = _auth.update_user.one(self.conn, **params)
        except psycopg.Error as exc:
            translate_error(exc, params)
        return User(**row) if row else None

    def delete_user(self, id: uuid.UUID | str) -> None:
        """Delete the user and all that is theirs (see user_dependents); nothing if unknown."""
        user_id = user_key(id)
        if user_id is None:
            return
        with atomic(self.conn):
            _auth.delete_user.execrows(self.conn, id=user_id)

    def user_dependents(self, id: uuid.UUID | str) -> UserDependents | None:
        """What delete_user would take with that user (counts); None if unknown."""
        user_id = user_key(id)
        row = None if user_id is None else _auth.user_dependents.one(self.conn, id=user_id)
        return UserDependents(**{k: int(v) for k, v in row.items()}) if row else None

    # -- passwords -----------------------------------------------------------

    def set_password(self, user_id: uuid.UUID | str, password: str) -> None:
        """A new password (sessions stay); NotFound if the user is unknown, InvalidPassword."""
        target = write_id(user_id)
        password_hash = self._new_hash(password)
        with atomic(self.conn):
            found = _auth.set_password_hash.execrows(
                self.conn, id=target, password_hash=password_hash
            )
        if not found:
            raise NotFound(f"no user with id {target}")

    def verify_credentials(self, email: str, password: str) -> User | None:
        """The user with that e-mail (any case) and password; None for an unknown e-mail,
        a user without a password, or a wrong password: all at the same bcrypt cost, so
        time tells no e-mails apart. A hash below the configured cost is renewed here.
        """
        address = text("email", email)
        secret = passwords.login_password(password)
        cost = passwords.configured_cost()
        row = _auth.get_credentials.one(self.conn, email=address)
        stored = None if row is None else row.pop("password_hash")
        verdict = run_blocking(self.conn, passwords.verify, secret, stored, cost)
        if row is None or not verdict.ok:
            return None
        if verdict.new_hash is not None:
            try:
                with atomic(self.conn):
                    rehashed = _auth.rehash_password.one(
                        self.conn, id=row["id"], old_hash=stored, new_hash=verdict.new_hash
                    )
                row = rehashed or row
            except pgerrors.ReadOnlySqlTransaction:
                pass  # a read-only transaction (a replica): rehash at a later login
        return User(**row)

    def reset_password(self, identifier: str, token: str, new_password: str) -> User | None:
        """Consume the token, set the password of the user whose e-mail is ``identifier``
        and delete all their sessions, at once; the user, or None if the token is unknown,
        used or expired. A refused password (InvalidPassword) leaves the token unused.
        """
        params = {
            "identifier": text("identifier", identifier),
            "token_hash": token_digest("token", token),
            "password_hash": self._new_hash(new_password),
        }
        with atomic(self.conn):
            row = _auth.reset_password.one(self.conn, **params)
        return User(**row) if row else None

    def _new_hash(self, password: object) -> str:
        """The bcrypt hash of a new password, made in a worker thread on the async side."""
        secret = passwords.new_password(password)
        cost = passwords.configured_cost()
        return run_blocking(self.conn, passwords.hash_password, secret, cost)

    # -- accounts ------------------------------------------------------------

    def link_account(
        self,
        *,
        user_id: uuid.UUID | str,
        type: str,
        provider: str,
        provider_account_id: str,
        refresh_token: str | None = None,
        access_token: str | None = None,
        expires_at: int | None = None,
        token_type: str | None = None,
        scope: str | None = None,
        id_token: str | None = None,
        session_state: str | None = None,
    ) -> Account:
        """Link a provider account; Conflict if (provider, provider_account_id) is taken."""
        if expires_at is not None and (
            not isinstance(expires_at, int) or isinstance(expires_at, bool)
        ):
            raise InvalidInput(f"expires_at must be an integer (seconds), not {expires_at!r}")
        params = {
            "user_id": write_id(user_id),
            "type": text("type", type),
            "provider": text("provider", provider),
            "provider_account_id": text("provider_account_id", provider_account_id),
            "refresh_token": optional_text("refresh_token", refresh_token),
            "access_token": optional_text("access_token", access_token),
            "expires_at": expires_at,
            "token_type": optional_text("token_type", token_type),
            "scope": optional_text("scope", scope),
            "id_token": optional_text("id_token", id_token),
            "session_state": optional_text("session_state", session_state),
        }
        try:
            with atomic(self.conn):
                row = _auth.link_account.one(self.conn, **params)
        except psycopg.Error as exc:
            translate_error(exc, params)
        assert row is not None
        return Account(**row)

    def unlink_account(self, provider: str, provider_account_id: str) -> None:
        """Remove that account link (the user stays); nothing if unknown."""
        params = {
            "provider": text("provider", provider),
            "provider_account_id": text("provider_account_id", provider_account_id),
        }
        with atomic(self.conn):
            _auth.unlink_account.execrows(self.conn, **params)

    # -- sessions ------------------------------------------------------------

    def create_session(
        self, *, session_token: str, user_id: uuid.UUID | str, expires: datetime
    ) -> Session:
        """A new session, stored under the token's hash; Conflict if the token is in use."""
        params = {
            "token_hash": token_digest("session_token", session_token),
            "user_id": write_id(user_id),
            "expires": aware_time("expires", expires),
        }
        try:
            with atomic(self.conn):
                row = _auth.create_session.one(self.conn, **params)
        except psycopg.Error as exc:
            translate_error(exc, params)
        assert row is not None
        return Session(session_token, row["user_id"], row["expires"])

    def get_session_and_user(self, session_token: str) -> tuple[Session, User] | None:
        """The live session and its user in one round trip; None if unknown or expired.

        An expired session is deleted by the same statement. No savepoint: one
        statement is atomic, and validated input cannot fail it (except that
        deleting an expired session fails in a read-only transaction).
        """
        row = _auth.get_session_and_user.one_tuple(
            self.conn, token_hash=token_digest("session_token", session_token)
        )
        if row is None:
            return None
        # The hot path reads a tuple row, not a dict: user_id, expires, then the
        # fields of User in order (the query keeps that order).
        return Session(session_token, row[0], row[1]), User(*row[2:])

    def update_session(self, session_token: str, *, expires: datetime) -> Session | None:
        """Move the session's expiry; None if the token is unknown."""
        params = {
            "token_hash": token_digest("session_token", session_token),
            "expires": aware_time("expires", expires),
        }
        with atomic(self.conn):
            row = _auth.update_session.one(self.conn, **params)
        return Session(session_token, row["user_id"], row["expires"]) if row else None

    def delete_session(self, session_token: str) -> None:
        """Forget the session (sign out); nothing if unknown."""
        token_hash = token_digest("session_token", session_token)
        with atomic(self.conn):
            _auth.delete_session.execrows(self.conn, token_hash=token_hash)

    # -- verification tokens -------------------------------------------------

    def create_verification_token(
        self, *, identifier: str, token: str, expires: datetime
    ) -> VerificationToken:
        """Store a single-use token (hashed); Conflict if that identifier already has it."""
        params = {
            "identifier": text("identifier", identifier),
            "token_hash": token_digest("token", token),
            "expires": aware_time("expires", expires),
        }
        try:
            with atomic(self.conn):
                row = _auth.create_verification_token.one(self.conn, **params)
        except psycopg.Error as exc:
            translate_error(exc, params)
        assert row is not None
        return VerificationToken(row["identifier"], token, row["expires"])

    def use_verification_token(self, identifier: str, token: str) -> VerificationToken | None:
        """Consume the token: the first caller gets it, later ones None; expired gives None.

        An expired token is deleted as well (unlike Auth.js core, which would
        report "expired": here it is simply unusable). Inside a caller's
        transaction, a concurrent caller waits for that transaction to end.
        """
        params = {
            "identifier": text("identifier", identifier),
            "token_hash": token_digest("token", token),
        }
        with atomic(self.conn):
            row = _auth.use_verification_token.one(self.conn, **params)
        if row is None or not row["is_valid"]:
            return None
        return VerificationToken(row["identifier"], token, row["expires"])

    # -- roles ---------------------------------------------------------------

    def set_role(self, user_id: uuid.UUID | str, role_name: str | None) -> User | None:
        """Give the user that role (None removes it); None if the user is unknown.

        NotFound if no role has that name.
        """
        target = user_key(user_id)
        with atomic(self.conn):
            role_id = None if role_name is None else self._role_id(role_name)
            if target is None:
                return None
            try:
                row = _roles.set_user_role.one(self.conn, user_id=target, role_id=role_id)
            except pgerrors.ForeignKeyViolation:  # the role was deleted meanwhile
                raise NotFound(f"no role named {role_name!r}") from None
        return User(**row) if row else None

    def users_with_role(self, name: str) -> list[User]:
        """The users holding that role, by email; NotFound if no role has that name."""
        rows = _roles.users_with_role.many(self.conn, role_id=self._role_id(name))
        return [User(**row) for row in rows]

    def list_users(self) -> list[User]:
        """Every user, by email."""
        return [User(**row) for row in _roles.list_users.many(self.conn)]

    def _role_id(self, name: str) -> int:
        row = _roles.get_role_id.one(self.conn, name=text("role", name))
        if row is None:
            raise NotFound(f"no role named {name!r} (seeded roles: admin, user)")
        return int(row["id"])

    # -- maintenance ---------------------------------------------------------

    def prune_expired(self) -> Pruned:
        """Delete every expired session and verification token (for a cron job)."""
        with atomic(self.conn):
            row = _auth.prune_expired.one(self.conn)
        assert row is not None
        return Pruned(int(row["sessions"]), int(row["verification_tokens"]))
