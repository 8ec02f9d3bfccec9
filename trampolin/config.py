"""Where the database is: --database-url, else DATABASE_URL, else nothing (the CLI then
starts its embedded server; see trampolin.cli.context). Nothing here connects or starts.

Session-level work (migrate, seed, dump, restore, verify) prefers a direct
connection: --direct-url, else DIRECT_URL (Prisma's ``directUrl``), else the
above. URLs are accepted as Prisma, Heroku and DigitalOcean write them
(``postgres://``, ``postgresql://``, ``postgresql+psycopg://``, ``?schema=``,
and Prisma's ``?pgbouncer=true`` marking a transaction-mode pooler) and
normalised to a libpq URL that psycopg and pg_dump take.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from trampolin.errors import ConfigError

Source = Literal[
    "--database-url", "DATABASE_URL", "--direct-url", "DIRECT_URL", "--target", "embedded"
]

_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}
# Prisma's own URL arguments, which libpq rejects; dropped.
_PRISMA_ONLY = {"connection_limit", "pool_timeout", "statement_cache_size", "socket_timeout"}
_TRUE = {"1", "true", "yes", "on"}
_ENCODING_HINT = "percent-encode / ? # @ % : in the password, e.g. @ as %40"


@dataclass(frozen=True)
class DatabaseTarget:
    """A normalised URL, where it came from, and whether it is flagged ?pgbouncer=true."""

    url: str
    source: Source
    pgbouncer: bool = False

    @property
    def display(self) -> str:
        """The URL with its password hidden, safe to print or log."""
        return redact(self.url)


def parse_url(url: str, *, origin: str = "database URL") -> tuple[str, bool]:
    """A libpq URL for ``url`` and whether it is flagged as a transaction-mode pooler.

    Raises ConfigError saying what is wrong, never showing the password: a
    password with unencoded special characters is the usual culprit, and
    libpq's own parse errors would quote parts of it.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ConfigError(f"{origin}: not a valid URL ({_ENCODING_HINT})") from None
    if parts.scheme not in _SCHEMES:
        shown = repr(parts.scheme) if parts.scheme else "none"
        raise ConfigError(
            f"{origin}: expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME, got scheme {shown}"
        )
    if "@" in parts.path or "@" in parts.query or "@" in parts.fragment:
        raise ConfigError(f"{origin}: an '@' after the host part ({_ENCODING_HINT})")
    if parts.netloc.count("@") > 1 or re.search(r"%(?![0-9A-Fa-f]{2})", parts.netloc):
        raise ConfigError(f"{origin}: malformed user or password ({_ENCODING_HINT})")
    query = []
    pgbouncer = False
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            query.append(("options", f"-csearch_path={value}"))
        elif key == "pgbouncer":
            pgbouncer = value.strip().lower() in _TRUE
        elif key not in _PRISMA_ONLY:
            query.append((key, value))
    # Built by hand: urlunsplit would turn postgresql:///db (Unix socket) into postgresql:/db.
    normalized = f"postgresql://{parts.netloc}{parts.path}"
    if query:
        normalized += "?" + urlencode(query, quote_via=quote)
    try:
        conninfo_to_dict(normalized)  # libpq's own parser has the last word
    except psycopg.Error:
        raise ConfigError(
            f"{origin}: not a valid PostgreSQL URL: {redact(normalized)} ({_ENCODING_HINT})"
        ) from None
    return normalized, pgbouncer


def normalize_url(url: str, *, origin: str = "database URL") -> str:
    """A libpq URL for ``url`` (see parse_url)."""
    return parse_url(url, origin=origin)[0]


_USERINFO_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:)(.*)@", re.DOTALL)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redact(url: str) -> str:
    """``url`` with any password (in the user part or a password= argument) replaced by ***.

    Works on malformed URLs too: everything between ``user:`` and the last
    ``@`` is hidden.
    """
    hidden = _USERINFO_PASSWORD.sub(r"\1***@", url, count=1)
    return _QUERY_PASSWORD.sub(r"\1***", hidden)


def _target(url: str, source: Source) -> DatabaseTarget:
    normalized, pgbouncer = parse_url(url, origin=source)
    return DatabaseTarget(normalized, source, pgbouncer)


def database_target(option_url: str | None) -> DatabaseTarget | None:
    """The database for services and queries: --database-url, else DATABASE_URL; None if neither."""
    if option_url:
        return _target(option_url, "--database-url")
    env_url = os.environ.get("DATABASE_URL")
    if env_url:
        return _target(env_url, "DATABASE_URL")
    return None


def resolve(option_url: str | None) -> DatabaseTarget:
    """database_target(), or ConfigError when nothing names a database."""
    target = database_target(option_url)
    if target is None:
        raise ConfigError("no database: set DATABASE_URL or pass --database-url")
    return target


def direct_target(
    direct_option: str | None, option_url: str | None, *, purpose: str = "this command"
) -> DatabaseTarget | None:
    """The database for session-level work, never a transaction-mode pooler; None if none is set.

    --direct-url, else --database-url (what the person typed beats the
    environment), else DIRECT_URL, else DATABASE_URL.
    """
    target: DatabaseTarget | None
    if direct_option:
        target = _target(direct_option, "--direct-url")
    elif option_url:
        target = _target(option_url, "--database-url")
    elif os.environ.get("DIRECT_URL"):
        target = _target(os.environ["DIRECT_URL"], "DIRECT_URL")
    else:
        target = database_target(None)
    return None if target is None else require_direct(target, purpose)


def require_direct(target: DatabaseTarget, purpose: str) -> DatabaseTarget:
    """``target`` itself, or ConfigError if it is flagged as a transaction-mode pooler."""
    if target.pgbouncer:
        raise ConfigError(
            f"{target.source} points at a transaction-mode pooler (pgbouncer=true), and "
            f"{purpose} needs a direct connection (session locks, pg_dump): set DIRECT_URL "
            "to the database's direct URL (Prisma's directUrl)"
        )
    return target


def target_option(url: str, purpose: str) -> DatabaseTarget:
    """The direct database given by a command's own --target option."""
    normalized, pgbouncer = parse_url(url, origin="--target")
    return require_direct(DatabaseTarget(normalized, "--target", pgbouncer), purpose)
