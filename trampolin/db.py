"""Connections, pools and transactions: the one place where psycopg is configured.

Two kinds of connection:
  * direct (migrate, seed, dump, restore): a plain session on the server;
  * service (``pool()``, ``async_pool()``, the repositories): may go through
    PgBouncer in transaction mode. A URL flagged ``?pgbouncer=true`` (Prisma's
    flag) turns server-side prepared statements off (``prepare_threshold=None``),
    since the pooler cannot keep them across transactions; service connections
    get a default ``statement_timeout`` so that one bad query cannot hold a
    pooled connection forever.

``atomic(conn)`` is the one transaction rule of every repository: a write of
several statements is all or nothing, and the caller's transaction is never
ended by us.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from typing import Any, Literal, TypeVar, overload

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from trampolin import queries
from trampolin.config import parse_url, redact, resolve
from trampolin.errors import ConnectionFailed, InvalidInput
from trampolin.values import first_line

APPLICATION_NAME = "trampolin"
DEFAULT_STATEMENT_TIMEOUT = "30s"

_db = queries.load("db")
_admin = queries.load("admin")


def connect(
    url: str,
    *,
    autocommit: bool = False,
    application_name: str = APPLICATION_NAME,
    statement_timeout: str | None = None,
    **kwargs: Any,
) -> Connection[Any]:
    """A new connection; ConnectionFailed (exit code 2) with the password hidden if it fails.

    ``statement_timeout`` (e.g. "30s") is set at connection start; it is
    ignored behind a transaction-mode pooler, where the role's setting applies.
    """
    conninfo, options = connection_options(url, statement_timeout=statement_timeout)
    try:
        return psycopg.connect(
            conninfo, autocommit=autocommit, application_name=application_name, **options, **kwargs
        )
    except psycopg.OperationalError as exc:
        raise _connection_failed(url, exc) from None


async def async_connect(
    url: str,
    *,
    autocommit: bool = False,
    application_name: str = APPLICATION_NAME,
    statement_timeout: str | None = None,
    **kwargs: Any,
) -> AsyncConnection[Any]:
    """connect(), for asyncio: a new psycopg.AsyncConnection."""
    conninfo, options = connection_options(url, statement_timeout=statement_timeout)
    try:
        return await psycopg.AsyncConnection.connect(
            conninfo, autocommit=autocommit, application_name=application_name, **options, **kwargs
        )
    except psycopg.OperationalError as exc:
        raise _connection_failed(url, exc) from None


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
) -> ConnectionPool[Connection[Any]]:
    """A psycopg_pool.ConnectionPool for a service; one per process, closed at shutdown.

    ``url`` defaults to DATABASE_URL. A connection idle for more than
    ``check_idle_after`` seconds is checked (one round trip) before it is
    handed out, so a connection the server or a firewall dropped is replaced
    instead of failing the caller's first query; busy connections skip the
    check. Connections are recycled after ``max_lifetime`` seconds and carry
    ``statement_timeout`` (default 30s, or $TRAMPOLIN_STATEMENT_TIMEOUT; "0"
    turns it off). They are in autocommit mode: each repository call is atomic
    on its own, and a unit of work spanning several calls is
    ``with conn.transaction():``.
    """
    conninfo, connect_kwargs = _pool_settings(url, statement_timeout, application_name)
    last_use = _LastUse(check_idle_after)

    def check(conn: Connection[Any]) -> None:
        if last_use.idle_too_long(conn):
            ConnectionPool.check_connection(conn)

    return ConnectionPool(
        conninfo,
        kwargs={"autocommit": autocommit, **connect_kwargs, **kwargs},
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        max_idle=max_idle,
        max_lifetime=max_lifetime,
        check=check,
        name=application_name,
        open=open,
    )


def async_pool(
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
    **kwargs: Any,
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """pool(), for asyncio: a psycopg_pool.AsyncConnectionPool with the same settings.

    Created closed, as psycopg_pool asks of an async pool: ``await pool.open()``
    (or ``async with``) in the service's lifespan, ``await pool.close()`` at its end.
    """
    conninfo, connect_kwargs = _pool_settings(url, statement_timeout, application_name)
    last_use = _LastUse(check_idle_after)

    async def check(conn: AsyncConnection[Any]) -> None:
        if last_use.idle_too_long(conn):
            await AsyncConnectionPool.check_connection(conn)

    return AsyncConnectionPool(
        conninfo,
        kwargs={"autocommit": autocommit, **connect_kwargs, **kwargs},
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        max_idle=max_idle,
        max_lifetime=max_lifetime,
        check=check,
        name=application_name,
        open=False,
    )


def _pool_settings(
    url: str | None, statement_timeout: str | None, application_name: str
) -> tuple[str, dict[str, Any]]:
    """The conninfo and connection options every service pool uses."""
    target_url = url or resolve(None).url
    timeout_setting = statement_timeout or os.environ.get(
        "TRAMPOLIN_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT
    )
    conninfo, options = connection_options(target_url, statement_timeout=timeout_setting)
    return conninfo, {"application_name": application_name, **options}


class _LastUse:
    """When each pooled connection was last handed out: an upper bound on its idle time.

    (A reset callback could note returns exactly, but it makes the pool return
    every connection through a worker, which halves throughput.)
    """

    def __init__(self, check_after: float) -> None:
        self.check_after = check_after
        self._handed_out: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()

    def idle_too_long(self, conn: object) -> bool:
        now = time.monotonic()
        last = self._handed_out.get(conn)
        self._handed_out[conn] = now
        return last is not None and now - last > self.check_after


@overload
def atomic(conn: Connection[Any]) -> AbstractContextManager[None]: ...
@overload
def atomic(conn: AsyncConnection[Any]) -> AbstractAsyncContextManager[None]: ...
def atomic(conn: Connection[Any] | AsyncConnection[Any]) -> Any:
    """A transaction block for a repository's write that never ends the caller's transaction.

    In the caller's transaction: a savepoint, so that an error leaves that
    transaction usable. On an idle autocommit connection: a transaction of its
    own (BEGIN ... COMMIT). On an idle connection that is not in autocommit:
    psycopg's implicit transaction is opened first, so that the block is a
    savepoint and the commit stays the caller's (``conn.transaction()`` alone
    would commit at its end).
    """
    if isinstance(conn, AsyncConnection):
        return _atomic_async(conn)
    return _atomic(conn)


@contextmanager
def _atomic(conn: Connection[Any]) -> Iterator[None]:
    if not conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        _db.begin_implicit.exec(conn)
    with conn.transaction():
        yield


@asynccontextmanager
async def _atomic_async(conn: AsyncConnection[Any]) -> AsyncIterator[None]:
    if not conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        await _db.begin_implicit.exec(conn)
    async with conn.transaction():
        yield


T = TypeVar("T")


@overload
def run_blocking(conn: Connection[Any], work: Callable[..., T], *args: Any) -> T: ...
@overload
def run_blocking(
    conn: AsyncConnection[Any], work: Callable[..., T], *args: Any
) -> Coroutine[Any, Any, T]: ...
def run_blocking(
    conn: Connection[Any] | AsyncConnection[Any], work: Callable[..., T], *args: Any
) -> Any:
    """``work(*args)``, for a repository on ``conn``: called at once on a sync connection;
    on an async one, an awaitable that runs it in a worker thread (asyncio.to_thread),
    so that CPU-bound work such as bcrypt never stalls the event loop."""
    if isinstance(conn, AsyncConnection):
        return asyncio.to_thread(work, *args)
    return work(*args)


def create_database(admin_url: str, name: str) -> bool:
    """Create database ``name`` unless it exists; True if this call created it."""
    with connect(admin_url, autocommit=True) as conn:
        if _admin.database_exists.one(conn, name=name):
            return False
        try:
            _admin.create_database.exec(conn, identifiers={"database": name})
        except psycopg.errors.DuplicateDatabase:
            return False  # created by a concurrent process
        return True


def connection_path(conn: Connection[Any]) -> Literal["direct", "proxied", "unknown"]:
    """Whether the server sees this very client socket ("direct") or another one.

    A different TCP port, or a Unix-socket client where we speak TCP (and the
    other way round), means something sits in between: a pooler such as
    PgBouncer, or a proxy. Unix socket at both ends gives "unknown".
    """
    seen = _admin.client_endpoint.one(conn)
    seen_port = None if seen is None else seen["port"]
    try:
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            if sock.family == socket.AF_UNIX:
                return "unknown" if seen_port is None else "proxied"
            local_port = sock.getsockname()[1]
    except OSError:
        return "unknown"
    return "direct" if seen_port is not None and int(seen_port) == local_port else "proxied"


def pins_sessions(conn: Connection[Any], url: str) -> bool:
    """False when ``conn`` goes through a transaction-mode pooler.

    Only meaningful for a "proxied" connection. Between two transactions a
    transaction-mode pooler hands this client's server session to others: a
    second client that opens a transaction right after is given the very
    server backend ``conn`` just used, which a session-mode pooler or a plain
    TCP proxy never does while ``conn`` is open.
    """
    mine = _admin.backend_pid.one(conn)
    with connect(url) as other:  # not autocommit: keeps its server session for the probe
        theirs = _admin.backend_pid.one(other)
        other.rollback()
    return mine is None or theirs is None or mine["pid"] != theirs["pid"]


def _connection_failed(url: str, exc: Exception) -> ConnectionFailed:
    text = str(exc).strip().splitlines()
    message = first_line(exc)
    for line in text[1:]:
        if line.startswith("FATAL") or "failed" in line:
            message = line.strip()
    password = _password(url)
    if password:
        message = message.replace(password, "***")
    return ConnectionFailed(f"cannot connect to {redact(url)}: {redact(message)}")


def _password(url: str) -> str | None:
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        return None
    return str(password) if password else None


def wait_until_reachable(
    url: str, timeout: float, *, on_retry: Callable[[ConnectionFailed], None] = lambda exc: None
) -> float:
    """Seconds until ``url`` accepted a connection; ConnectionFailed once ``timeout`` has passed.

    Retries with backoff (0.25 s, doubling, at most 5 s between tries): a
    managed database being created or restarted refuses connections for a
    while. ``on_retry`` hears each failed try.
    """
    if not 0 <= timeout < math.inf:
        raise InvalidInput(f"timeout must be a number of seconds, not {timeout!r}")
    started = time.monotonic()
    deadline = started + timeout
    delay = 0.25
    while True:
        remaining = deadline - time.monotonic()
        try:
            # libpq's connect_timeout is whole seconds, and at least 2.
            connect(url, connect_timeout=max(2, min(10, math.ceil(remaining)))).close()
            return time.monotonic() - started
        except ConnectionFailed as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConnectionFailed(f"gave up waiting after {timeout:g}s: {exc}") from None
            on_retry(exc)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
