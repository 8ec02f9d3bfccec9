"""Connections and pools: the one place where psycopg is configured and its errors made readable.

Two kinds of connection:
  * direct (migrate, seed, dump, restore): a plain session on the server;
  * service (``pool()``, the repositories): may go through PgBouncer in
    transaction mode. A URL flagged ``?pgbouncer=true`` (Prisma's flag) turns
    server-side prepared statements off (``prepare_threshold=None``), since the
    pooler cannot keep them across transactions; service connections get a
    default ``statement_timeout`` so that one bad query cannot hold a pooled
    connection forever.
"""

from __future__ import annotations

import os
import socket
import time
import weakref
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus

from trampolin.config import parse_url, redact, resolve
from trampolin.errors import ConnectionFailed
from trampolin.queries import load_queries

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

APPLICATION_NAME = "trampolin"
DEFAULT_STATEMENT_TIMEOUT = "30s"


def connect(
    url: str,
    *,
    autocommit: bool = False,
    application_name: str = APPLICATION_NAME,
    statement_timeout: str | None = None,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """A new connection; ConnectionFailed (exit code 2) with the password hidden if it fails.

    ``statement_timeout`` (e.g. "30s") is set at connection start; it is
    ignored behind a transaction-mode pooler, where the role's setting applies.
    """
    conninfo, options = connection_options(url, statement_timeout=statement_timeout)
    try:
        return psycopg.connect(
            conninfo,
            autocommit=autocommit,
            application_name=application_name,
            **options,
            **kwargs,
        )
    except psycopg.OperationalError as exc:
        raise ConnectionFailed(
            f"cannot connect to {redact(url)}: {_first_line(exc, url)}"
        ) from None


def connection_options(
    url: str, *, statement_timeout: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The conninfo and psycopg connect() options for ``url`` (a URL or key=value conninfo)."""
    normalized, pgbouncer = parse_url(url) if "://" in url else (url, False)
    options: dict[str, Any] = {}
    if pgbouncer:
        options["prepare_threshold"] = None
    elif statement_timeout:
        startup = conninfo_to_dict(normalized).get("options") or ""
        normalized = make_conninfo(
            normalized, options=f"{startup} -c statement_timeout={statement_timeout}".strip()
        )
    return normalized, options


def pool(
    url: str | None = None,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 30.0,
    max_idle: float = 600.0,
    max_lifetime: float = 3600.0,
    check_idle_after: float = 5.0,
    statement_timeout: str | None = None,
    application_name: str = APPLICATION_NAME,
    autocommit: bool = True,
    open: bool = True,
    **kwargs: Any,
) -> ConnectionPool[psycopg.Connection[Any]]:
    """A psycopg_pool.ConnectionPool for a service; one per process, closed at shutdown.

    ``url`` defaults to DATABASE_URL (or the embedded server). A connection
    idle for more than ``check_idle_after`` seconds is checked (one round
    trip) before it is handed out, so a connection the server or a firewall
    dropped is replaced instead of failing the caller's first query; busy
    connections skip the check. Connections are recycled after
    ``max_lifetime`` seconds and carry ``statement_timeout`` (default 30s, or
    $TRAMPOLIN_STATEMENT_TIMEOUT; "0" turns it off). They are in autocommit
    mode: a unit of work spanning several calls is ``with conn.transaction():``.
    """
    from psycopg_pool import ConnectionPool

    target_url = url or resolve(None).url
    timeout_setting = statement_timeout or os.environ.get(
        "TRAMPOLIN_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT
    )
    conninfo, options = connection_options(target_url, statement_timeout=timeout_setting)
    # When each connection was last handed out: an upper bound on how long it
    # has been idle. (A reset callback could note returns exactly, but it makes
    # the pool return every connection through a worker thread, which halves
    # throughput.)
    handed_out: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
        weakref.WeakKeyDictionary()
    )

    def check_if_idle(conn: psycopg.Connection[Any]) -> None:
        now = time.monotonic()
        last = handed_out.get(conn)
        handed_out[conn] = now
        if last is not None and now - last > check_idle_after:
            ConnectionPool.check_connection(conn)

    return ConnectionPool(
        conninfo,
        kwargs={
            "application_name": application_name,
            "autocommit": autocommit,
            **options,
            **kwargs,
        },
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        max_idle=max_idle,
        max_lifetime=max_lifetime,
        check=check_if_idle,
        name=application_name,
        open=open,
    )


def atomic(conn: psycopg.Connection[Any], statements: int = 1) -> AbstractContextManager[object]:
    """Make a repository's write atomic without ever ending the caller's transaction.

    In a transaction: a savepoint, so an error leaves that transaction usable.
    Autocommit and idle: one statement is its own transaction (no context at
    all, no BEGIN/COMMIT round trips); several get BEGIN/COMMIT. Not autocommit
    and idle: open the implicit transaction first (psycopg would begin one
    anyway), so that ``conn.transaction()`` is a savepoint and the commit stays
    the caller's; a bare ``conn.transaction()`` there would commit at its end.
    """
    if conn.info.transaction_status == TransactionStatus.IDLE:
        if conn.autocommit:
            if statements == 1:
                return _NO_TRANSACTION
        else:
            _db.begin_implicit.exec(conn)
    return conn.transaction()


_NO_TRANSACTION = nullcontext()
_db = load_queries("db")


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


def connection_path(conn: psycopg.Connection[Any]) -> Literal["direct", "proxied", "unknown"]:
    """Whether the server sees this very client socket ("direct") or another one.

    A different TCP port, or a Unix-socket client where we speak TCP (and the
    other way round), means something sits in between: a pooler such as
    PgBouncer, or a proxy. Unix socket at both ends gives "unknown".
    """
    seen = load_queries("admin").client_endpoint.one(conn)
    seen_port = None if seen is None else seen["port"]
    try:
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            if sock.family == socket.AF_UNIX:
                return "unknown" if seen_port is None else "proxied"
            local_port = sock.getsockname()[1]
    except OSError:
        return "unknown"
    return "direct" if seen_port is not None and int(seen_port) == local_port else "proxied"


def pins_sessions(conn: psycopg.Connection[Any], url: str) -> bool:
    """False when ``conn`` goes through a transaction-mode pooler.

    Only meaningful for a "proxied" connection. Between two transactions a
    transaction-mode pooler hands this client's server session to others: a
    second client that opens a transaction right after is given the very
    server backend ``conn`` just used, which a session-mode pooler or a plain
    TCP proxy never does while ``conn`` is open.
    """
    admin = load_queries("admin")
    mine = admin.backend_pid.one(conn)
    with connect(url) as other:  # not autocommit: keeps its server session for the probe
        theirs = admin.backend_pid.one(other)
        other.rollback()
    return mine is None or theirs is None or mine["pid"] != theirs["pid"]


def _first_line(exc: Exception, url: str) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    for line in text[1:]:
        if line.startswith("FATAL") or "failed" in line:
            message = line.strip()
    password = _password(url)
    if password:
        message = message.replace(password, "***")
    return redact(message)


def _password(url: str) -> str | None:
    try:
        password = conninfo_to_dict(url).get("password")
    except Exception:
        return None
    return str(password) if password else None
