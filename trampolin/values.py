"""Argument checks every repository shares: text PostgreSQL can hold, ids, numbers, times.

Each check returns the value (normalised where that is its job) or raises
InvalidInput naming the field. Lookups of ids that cannot exist give None
instead, so that "unknown id" reads the same however the id is malformed.
No database here; tests/test_values.py covers it without one.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime

from trampolin.errors import InvalidInput

MAX_BIGINT = 2**63 - 1
MAX_EMAIL_LENGTH = 320

#: Hashed in front of an old id by legacy_uuid; fixed forever (sql/migrations/0014_legacy_ids.sql).
LEGACY_ID_PREFIX = "trampolin legacy id:"
_STANDARD_UUID = re.compile(
    r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}\Z"
)


def text(field: str, value: object) -> str:
    """``value`` if it is a str that PostgreSQL text can hold (no NUL, no lone surrogate)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL byte, which PostgreSQL text cannot hold")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} is not valid Unicode (lone surrogate)") from None
    return value


def optional_text(field: str, value: object) -> str | None:
    """text(), or None for None."""
    return None if value is None else text(field, value)


def aware_time(field: str, value: object) -> datetime:
    """``value`` if it is a timezone-aware datetime (a naive one is ambiguous)."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} must be timezone-aware (a naive datetime is ambiguous)")
    return value


def optional_aware_time(field: str, value: object) -> datetime | None:
    """aware_time(), or None for None."""
    return None if value is None else aware_time(field, value)


def is_int(value: object) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def integer(field: str, value: object, *, minimum: int = 0, maximum: int = MAX_BIGINT) -> int:
    """``value`` if it is an int (not a bool) from ``minimum`` to ``maximum``."""
    if not is_int(value):
        raise InvalidInput(f"{field} must be an integer, not {type(value).__name__}")
    assert isinstance(value, int)
    if not minimum <= value <= maximum:
        raise InvalidInput(f"{field} must be between {minimum} and {maximum}, not {value}")
    return value


def limit(value: object, maximum: int) -> int:
    """A page size: an integer from 1 to ``maximum``."""
    return integer("limit", value, minimum=1, maximum=maximum)


def user_key(value: object) -> uuid.UUID | None:
    """A user id to look up: the UUID it spells, else legacy_uuid() of the string.

    So the old (Prisma cuid) id of an adopted user finds that user everywhere a
    user id is taken. None for a string no row can have (not valid Unicode).
    InvalidInput for anything that is neither a UUID nor a string.
    """
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
        try:
            return legacy_uuid(value)
        except UnicodeEncodeError:
            return None
    raise InvalidInput(f"a user id must be a UUID or a string, not {type(value).__name__}")


def legacy_uuid(legacy_id: str) -> uuid.UUID:
    """The UUID ``trampolin adopt`` gave the row whose old id is ``legacy_id``.

    The same as SQL ``legacy_uuid(text)``: an id in standard UUID form is that
    UUID; any other is the first 16 bytes of sha256(LEGACY_ID_PREFIX + id) as
    a version 8 UUID. UnicodeEncodeError for a string that is not valid Unicode.
    """
    if _STANDARD_UUID.match(legacy_id):
        return uuid.UUID(legacy_id)
    digest = bytearray(hashlib.sha256((LEGACY_ID_PREFIX + legacy_id).encode("utf-8")).digest())
    digest[6] = digest[6] & 0x0F | 0x80  # version 8
    digest[8] = digest[8] & 0x3F | 0x80  # RFC 9562 variant
    return uuid.UUID(bytes=bytes(digest[:16]))


def bigint_key(field: str, value: object) -> int | None:
    """A bigint id to look up (an int, or its decimal string); None if no row can have it."""
    if isinstance(value, str):
        digits = value.strip()
        if not digits.isascii() or not digits.isdigit() or len(digits) > 19:
            return None
        value = int(digits)
    if not is_int(value):
        raise InvalidInput(f"{field} must be an integer, not {type(value).__name__}")
    assert isinstance(value, int)
    return value if 1 <= value <= MAX_BIGINT else None


def email_address(value: object, field: str = "email") -> str:
    """``value`` if it looks like an address a person typed correctly: name@domain, no spaces."""
    address = text(field, value)
    local, at, domain = address.rpartition("@")
    if (
        not (at and local and domain)
        or len(address) > MAX_EMAIL_LENGTH
        or any(ch.isspace() or not ch.isprintable() for ch in address)
    ):
        raise InvalidInput(f"{field} {address!r}: expected an address like name@example.com")
    return address


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name if it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
