"""Connections: the one place where psycopg is configured and its errors made readable."""

from __future__ import annotations

from typing import Any

import psycopg

from trampolin.config import redact
from trampolin.errors import ConnectionFailed
from trampolin.queries import load_queries

APPLICATION_NAME = "trampolin"


def connect(
    url: str,
    *,
    autocommit: bool = False,
    application_name: str = APPLICATION_NAME,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """A new connection; ConnectionFailed (exit code 2) with the password hidden if it fails."""
    try:
        return psycopg.connect(
            url, autocommit=autocommit, application_name=application_name, **kwargs
        )
    except psycopg.OperationalError as exc:
        raise ConnectionFailed(
            f"cannot connect to {redact(url)}: {_first_line(exc, url)}"
        ) from None


def create_database(admin_url: str, name: str) -> bool:
    """Create database ``name`` unless it exists; True if this call created it."""
    admin = load_queries("admin")
    with connect(admin_url, autocommit=True) as conn:
        if admin.database_exists.one(conn, name=name):
            return False
        try:
            admin.create_database.exec(conn, identifiers={"database": name})
        except psycopg.errors.DuplicateDatabase:
            return False  # created by a concurrent process
        return True


def _first_line(exc: Exception, url: str) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    for line in text[1:]:
        if line.startswith("FATAL") or "failed" in line:
            message = line.strip()
    password = _password(url)
    return message.replace(password, "***") if password else message


def _password(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    raw = urlsplit(url).password
    return unquote(raw) if raw else None
