"""The password policy: which passwords are accepted, how they are hashed and checked.

bcrypt through the ``bcrypt`` package, compatible both ways with the web app's
Node ``bcrypt`` and ``bcryptjs`` hashes ($2a$, $2b$, $2y$, any cost). New
hashes are $2b$ at ``TRAMPOLIN_BCRYPT_COST`` (default 12). Pure: no database;
trampolin.auth runs the slow calls off the event loop.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import bcrypt

from trampolin.errors import ConfigError, InvalidInput, InvalidPassword

MIN_LENGTH = 8  # characters, as the web app's register form asks
MAX_BYTES = 72  # bcrypt reads no further
DEFAULT_COST = 12
MIN_COST, MAX_COST = 4, 31  # what bcrypt accepts
COST_VARIABLE = "TRAMPOLIN_BCRYPT_COST"

# A hash we can verify: bcrypt's three labels of the same algorithm (Node's
# bcrypt writes $2b$, or $2a$ when asked; bcryptjs 2 writes $2a$; PHP writes $2y$).
_HASH = re.compile(r"\$2[aby]\$(?P<cost>\d\d)\$[./A-Za-z0-9]{53}")

# The salt and digest of a throwaway hash. An unknown e-mail (or a user with no
# password) is checked against it at the configured cost, so that the answer
# takes as long as for a real user: no telling which addresses have accounts.
# (The tail of a hash of 32 random bytes that were thrown away: nothing matches it.)
_DUMMY_TAIL = "0CDS.wE4n145Yb.0/mJhz.E9fUOvLZDXVp.Tw/7ps4o62X9bGW1xC"


@dataclass(frozen=True)
class Verdict:
    """What checking a login found: whether it matched, and a stronger hash to store."""

    ok: bool
    new_hash: str | None = field(default=None, repr=False)


def configured_cost(environ: Mapping[str, str] = os.environ) -> int:
    """The bcrypt cost for new hashes: $TRAMPOLIN_BCRYPT_COST, or 12."""
    raw = environ.get(COST_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_COST
    if not raw.isascii() or not raw.isdigit() or not MIN_COST <= int(raw) <= MAX_COST:
        raise ConfigError(
            f"{COST_VARIABLE}={raw!r}: expected a bcrypt cost from {MIN_COST} to {MAX_COST} "
            f"(default {DEFAULT_COST}; each step doubles the time of a login)"
        )
    return int(raw)


def new_password(password: object) -> bytes:
    """The UTF-8 bytes of a password someone is setting; InvalidPassword saying why not.

    At least 8 characters and at most 72 bytes: bcrypt ignores what follows
    the 72nd byte, and a password silently cut short is not the one chosen.
    (Pre-hashing longer passwords would make hashes that the Node app cannot
    check.) No NUL: Node's bcrypt would end the password there.
    """
    if not isinstance(password, str):
        raise InvalidPassword(f"password must be a string, not {type(password).__name__}")
    secret = _utf8(password, InvalidPassword)
    if len(password) < MIN_LENGTH:
        raise InvalidPassword(f"password is too short: it needs at least {MIN_LENGTH} characters")
    if len(secret) > MAX_BYTES:
        raise InvalidPassword(
            f"password is too long: bcrypt uses at most {MAX_BYTES} bytes of UTF-8 "
            f"({MAX_BYTES} plain ASCII characters, fewer with accents or emoji)"
        )
    return secret


def login_password(password: object) -> bytes:
    """The bytes of a password typed at login, as Node's bcrypt compared them.

    No length rule: older accounts may hold shorter passwords. Past 72 bytes,
    only the first 72 count, exactly as when the Node app hashed it, so those
    users still sign in. InvalidInput for a non-string or a NUL byte.
    """
    if not isinstance(password, str):
        raise InvalidInput(f"password must be a string, not {type(password).__name__}")
    return _utf8(password, InvalidInput)[:MAX_BYTES]


def hash_password(secret: bytes, cost: int) -> str:
    """A new $2b$ hash of ``secret`` (from new_password) at ``cost``."""
    return bcrypt.hashpw(secret, bcrypt.gensalt(rounds=cost)).decode("ascii")


def verify(secret: bytes, stored: str | None, cost: int) -> Verdict:
    """Check ``secret`` (from login_password) against the stored hash, or against
    the dummy hash when there is none, at the same bcrypt cost either way.

    On a match with a hash below ``cost``, the Verdict carries a new hash at
    ``cost`` to store in its place. A stored value that is not a bcrypt hash
    we can read never matches.
    """
    if stored is not None and hash_cost(stored) is not None:
        try:
            ok = bcrypt.checkpw(secret, stored.encode("ascii"))
        except ValueError:  # a salt bcrypt refuses (no Node library writes one)
            pass
        else:
            if ok and needs_rehash(stored, cost):
                return Verdict(True, hash_password(secret, cost))
            return Verdict(ok)
    bcrypt.checkpw(secret, dummy_hash(cost).encode("ascii"))
    return Verdict(False)


def hash_cost(stored: str) -> int | None:
    """The cost of a bcrypt hash we can verify; None if it is not one."""
    match = _HASH.fullmatch(stored)
    if match is None or not MIN_COST <= int(match["cost"]) <= MAX_COST:
        return None
    return int(match["cost"])


def needs_rehash(stored: str, cost: int) -> bool:
    """True if the hash is weaker than ``cost`` (e.g. the old register route's cost 10)."""
    current = hash_cost(stored)
    return current is not None and current < cost


def dummy_hash(cost: int) -> str:
    """The fixed hash that unknown e-mails are checked against, at ``cost``."""
    return f"$2b${cost:02d}${_DUMMY_TAIL}"


def _utf8(password: str, error: type[InvalidInput]) -> bytes:
    if "\x00" in password:
        raise error("password contains a NUL byte, which bcrypt cannot hash as typed")
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise error("password is not valid Unicode (lone surrogate)") from None
