"""What trampolin.auth hands out and takes in: its records, and the conversions at its edge.

Frozen dataclasses, one per thing the adapter returns; raw tokens to the digests
stored in their place; user ids for writes; database errors to TrampolinErrors
that name what clashed. No queries here.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import psycopg
from psycopg import errors as pgerrors

from trampolin.errors import Conflict, InvalidInput, NotFound
from trampolin.values import first_line, text, user_key


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    name: str | None
    email: str
    email_verified: datetime | None
    image: str | None
    role: str | None
    created_at: datetime
    updated_at: datetime
    has_password: bool


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    user_id: uuid.UUID
    type: str
    provider: str
    provider_account_id: str
    refresh_token: str | None
    access_token: str | None
    expires_at: int | None
    token_type: str | None
    scope: str | None
    id_token: str | None
    session_state: str | None


@dataclass(frozen=True)
class Session:
    session_token: str
    user_id: uuid.UUID
    expires: datetime


@dataclass(frozen=True)
class VerificationToken:
    identifier: str
    token: str
    expires: datetime


@dataclass(frozen=True)
class UserDependents:
    """What deleting a user takes with it; live subscriptions are those not ended in Stripe."""

    sessions: int
    accounts: int
    subscriptions: int
    live_subscriptions: int
    csv_uploads: int
    csv_rows: int
    searches: int
    url_analyses: int


@dataclass(frozen=True)
class Pruned:
    """How many expired rows ``prune_expired`` deleted."""

    sessions: int
    verification_tokens: int


def hash_token(token: str) -> bytes:
    """The 32-byte SHA-256 digest stored in place of a session or verification token."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def token_digest(field: str, token: object) -> bytes:
    """hash_token of a token that text() accepts (InvalidInput naming ``field`` if not)."""
    return hash_token(text(field, token))


def write_id(value: object) -> uuid.UUID:
    """The id of a user that a write refers to; NotFound if it cannot be one."""
    user_id = user_key(value)
    if user_id is None:
        raise NotFound(f"no user with id {value!r}")
    return user_id


def translate_error(exc: psycopg.Error, params: Mapping[str, Any]) -> NoReturn:
    """Raise the TrampolinError that names what clashed; re-raise anything unexpected."""
    constraint = exc.diag.constraint_name
    if isinstance(exc, pgerrors.UniqueViolation):
        if constraint == "users_email_key":
            raise Conflict(f"a user with email {params['email']!r} already exists") from None
        if constraint == "accounts_provider_provider_account_id_key":
            raise Conflict(
                f"account {params['provider_account_id']!r} of provider "
                f"{params['provider']!r} is already linked"
            ) from None
        if constraint == "sessions_pkey":
            raise Conflict("a session with that session token already exists") from None
        if constraint == "verification_tokens_pkey":
            raise Conflict(
                f"identifier {params['identifier']!r} already has that verification token"
            ) from None
    if isinstance(exc, pgerrors.ForeignKeyViolation) and "user_id" in params:
        raise NotFound(f"no user with id {params['user_id']}") from None
    if isinstance(exc, pgerrors.NumericValueOutOfRange):
        raise InvalidInput(f"a number is out of range: {first_line(exc)}") from None
    if isinstance(exc, pgerrors.ProgramLimitExceeded):
        raise InvalidInput(f"a value is too long to index: {first_line(exc)}") from None
    raise exc
