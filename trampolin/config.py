"""Where the database is: --database-url, else DATABASE_URL, else the embedded server.

URLs are accepted as Prisma, Heroku and DigitalOcean write them
(``postgres://``, ``postgresql://``, ``postgresql+psycopg://``, Prisma's
``?schema=``) and normalised to a libpq URL that psycopg and pg_dump take.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from trampolin.errors import ConfigError

Source = Literal["--database-url", "DATABASE_URL", "embedded"]

_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}
# Prisma's own URL arguments, which libpq rejects; handled or dropped here.
_PRISMA_ONLY = {"connection_limit", "pool_timeout", "statement_cache_size", "socket_timeout"}


@dataclass(frozen=True)
class DatabaseTarget:
    url: str
    source: Source

    @property
    def display(self) -> str:
        """The URL with its password hidden, safe to print or log."""
        return redact(self.url)


def normalize_url(url: str, *, origin: str = "database URL") -> str:
    """A libpq URL for ``url``, or ConfigError saying what is wrong with it."""
    from psycopg.conninfo import conninfo_to_dict

    parts = urlsplit(url.strip())
    if parts.scheme not in _SCHEMES:
        shown = parts.scheme or "none"
        raise ConfigError(
            f"{origin}: expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME, got scheme {shown!r}"
        )
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            query.append(("options", f"-csearch_path={value}"))
        elif key not in _PRISMA_ONLY:
            query.append((key, value))
    normalized = urlunsplit(
        ("postgresql", parts.netloc, parts.path, urlencode(query, quote_via=quote), "")
    )
    try:
        conninfo_to_dict(normalized)
    except Exception as exc:
        raise ConfigError(f"{origin}: not a valid PostgreSQL URL ({redact(str(exc))})") from None
    return normalized


def redact(url: str) -> str:
    """``url`` with any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def resolve(option_url: str | None, *, start_embedded: bool = True) -> DatabaseTarget:
    """The database to use; starts (or reuses) the embedded server when nothing is set."""
    if option_url:
        return DatabaseTarget(normalize_url(option_url, origin="--database-url"), "--database-url")
    env_url = os.environ.get("DATABASE_URL")
    if env_url:
        return DatabaseTarget(normalize_url(env_url, origin="DATABASE_URL"), "DATABASE_URL")
    if not start_embedded:
        raise ConfigError("no database: set DATABASE_URL or pass --database-url")
    from trampolin.embedded import embedded_url

    return DatabaseTarget(embedded_url(), "embedded")
