"""Argument checks every repository shares: text PostgreSQL can hold, ids, numbers, times.

Each check returns the value (normalised where that is its job) or raises
InvalidInput naming the field. Lookups of ids that cannot exist give None
instead, so that "unknown id" reads the same however the id is malformed.
No database here; tests/test_values.py covers it without one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from trampolin.errors import InvalidInput

MAX_BIGINT = 2**63 - 1
MAX_EMAIL_LENGTH = 320


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
    """A user id to look up: the UUID, or None for a string that cannot be one.

    InvalidInput for anything that is neither a UUID nor a string.
    """
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    raise InvalidInput(f"a user id must be a UUID or a string, not {type(value).__name__}")


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
