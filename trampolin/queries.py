"""Named SQL queries: sql/queries/<area>.sql parsed once, run on a sync or an async connection.

A query file is a list of blocks, each introduced by one line::

    -- name: get_user_by_email :one
    -- The user with that email, matched case-insensitively.
    SELECT ... WHERE lower(email) = lower(%(email)s);

The comment lines right under the name are the query's documentation. Kinds:
``:one`` (a row or None), ``:many`` (a list of rows), ``:exec`` (nothing),
``:execrows`` (the affected row count) and ``:copy`` (a COPY statement).
A repository loads its file at import (``_q = queries.load("auth")``); a
malformed file raises QueryFileError naming file:line.

Each way of running a query takes a ``psycopg.Connection`` and returns the
result, or a ``psycopg.AsyncConnection`` and returns an awaitable of the same
result: the async repositories and their generated sync twins
(tools/async_to_sync.py) call the very same lines.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, overload

from psycopg import AsyncConnection, AsyncCopy, Connection, Copy
from psycopg import sql as pgsql
from psycopg.rows import DictRow, dict_row, tuple_row

from trampolin.errors import QueryFileError

__all__ = ["KINDS", "Query", "QueryFile", "load", "load_file", "parse_queries", "sql_root"]

Kind = Literal["one", "many", "exec", "execrows", "copy"]
KINDS: tuple[Kind, ...] = ("one", "many", "exec", "execrows", "copy")
Identifiers = Mapping[str, str | pgsql.Composable]

_NAME_LINE = re.compile(r"^--\s*name:\s*(?P<rest>.*)$")
_NAME_SPEC = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\s+:(?P<kind>[a-z]+)\s*$")
_PARAM = re.compile(r"%\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)s")


def sql_root() -> Path:
    """The sql/ tree: inside the installed package (wheel) or at the checkout's root."""
    packaged = Path(__file__).resolve().parent / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "sql"


@dataclass(frozen=True)
class Query:
    """One named query; call the method that matches its kind."""

    name: str
    kind: Kind
    sql: str
    doc: str
    path: Path
    line: int
    params: frozenset[str] = frozenset()

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    def composed(self, identifiers: Identifiers) -> pgsql.Composed:
        """The SQL with its ``{placeholders}`` filled by quoted identifiers.

        A value that is already a psycopg ``Composable`` (e.g. a list of
        identifiers joined by ``pgsql.SQL(", ")``) is used as is.
        """
        return pgsql.SQL(self.sql).format(
            **{
                key: value if isinstance(value, pgsql.Composable) else pgsql.Identifier(value)
                for key, value in identifiers.items()
            }
        )

    @overload
    def one(self, conn: Connection[Any], **params: Any) -> DictRow | None: ...
    @overload
    def one(
        self, conn: AsyncConnection[Any], **params: Any
    ) -> Coroutine[Any, Any, DictRow | None]: ...
    def one(self, conn: Connection[Any] | AsyncConnection[Any], **params: Any) -> Any:
        """The first row as a dict, or None when there is none."""
        self._check("one", params)
        if isinstance(conn, AsyncConnection):
            return self._one_async(conn, params)
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(self.sql, params).fetchone()

    async def _one_async(self, conn: AsyncConnection[Any], params: dict[str, Any]) -> Any:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(self.sql, params)
            return await cur.fetchone()

    @overload
    def one_tuple(self, conn: Connection[Any], **params: Any) -> tuple[Any, ...] | None: ...
    @overload
    def one_tuple(
        self, conn: AsyncConnection[Any], **params: Any
    ) -> Coroutine[Any, Any, tuple[Any, ...] | None]: ...
    def one_tuple(self, conn: Connection[Any] | AsyncConnection[Any], **params: Any) -> Any:
        """The first row as a plain tuple, or None.

        The one shortcut for a measured hot path (the session lookup, bench/auth.py):
        no dict per row, and a client cursor that needs no close().
        """
        self._check("one", params)
        if isinstance(conn, AsyncConnection):
            return self._one_tuple_async(conn, params)
        return conn.cursor(row_factory=tuple_row).execute(self.sql, params).fetchone()

    async def _one_tuple_async(self, conn: AsyncConnection[Any], params: dict[str, Any]) -> Any:
        cur = await conn.cursor(row_factory=tuple_row).execute(self.sql, params)
        return await cur.fetchone()

    @overload
    def many(self, conn: Connection[Any], **params: Any) -> list[DictRow]: ...
    @overload
    def many(
        self, conn: AsyncConnection[Any], **params: Any
    ) -> Coroutine[Any, Any, list[DictRow]]: ...
    def many(self, conn: Connection[Any] | AsyncConnection[Any], **params: Any) -> Any:
        """All rows, as dicts."""
        self._check("many", params)
        if isinstance(conn, AsyncConnection):
            return self._many_async(conn, params)
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(self.sql, params).fetchall()

    async def _many_async(self, conn: AsyncConnection[Any], params: dict[str, Any]) -> Any:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(self.sql, params)
            return await cur.fetchall()

    @overload
    def exec(
        self, conn: Connection[Any], *, identifiers: Identifiers | None = None, **params: Any
    ) -> None: ...
    @overload
    def exec(
        self, conn: AsyncConnection[Any], *, identifiers: Identifiers | None = None, **params: Any
    ) -> Coroutine[Any, Any, None]: ...
    def exec(
        self,
        conn: Connection[Any] | AsyncConnection[Any],
        *,
        identifiers: Identifiers | None = None,
        **params: Any,
    ) -> Any:
        """Run the statement; ``identifiers`` fill its ``{placeholders}`` (see composed)."""
        self._check("exec", params)
        query = self.composed(identifiers) if identifiers else self.sql
        if isinstance(conn, AsyncConnection):
            return self._exec_async(conn, query, params)
        conn.execute(query, params or None)
        return None

    async def _exec_async(
        self, conn: AsyncConnection[Any], query: str | pgsql.Composed, params: dict[str, Any]
    ) -> None:
        await conn.execute(query, params or None)

    @overload
    def execrows(self, conn: Connection[Any], **params: Any) -> int: ...
    @overload
    def execrows(self, conn: AsyncConnection[Any], **params: Any) -> Coroutine[Any, Any, int]: ...
    def execrows(self, conn: Connection[Any] | AsyncConnection[Any], **params: Any) -> Any:
        """The number of rows the statement affected."""
        self._check("execrows", params)
        if isinstance(conn, AsyncConnection):
            return self._execrows_async(conn, params)
        return conn.execute(self.sql, params or None).rowcount

    async def _execrows_async(self, conn: AsyncConnection[Any], params: dict[str, Any]) -> int:
        return (await conn.execute(self.sql, params or None)).rowcount

    @overload
    def copy(
        self, conn: Connection[Any], *, identifiers: Identifiers | None = None, **params: Any
    ) -> AbstractContextManager[Copy]: ...
    @overload
    def copy(
        self, conn: AsyncConnection[Any], *, identifiers: Identifiers | None = None, **params: Any
    ) -> AbstractAsyncContextManager[AsyncCopy]: ...
    def copy(
        self,
        conn: Connection[Any] | AsyncConnection[Any],
        *,
        identifiers: Identifiers | None = None,
        **params: Any,
    ) -> Any:
        """psycopg's Copy (or AsyncCopy) for this COPY statement (``identifiers``: see composed)."""
        self._check("copy", params)
        query = self.composed(identifiers) if identifiers else self.sql
        if isinstance(conn, AsyncConnection):
            return _copy_async(conn, query, params)
        return _copy(conn, query, params)

    def _check(self, kind: Kind, params: Mapping[str, Any]) -> None:
        if kind != self.kind:
            raise TypeError(f"query {self.name} ({self.where}) is :{self.kind}, not :{kind}")
        missing = self.params.difference(params)
        if missing:
            raise TypeError(f"query {self.name} ({self.where}) needs {', '.join(sorted(missing))}")


@contextmanager
def _copy(
    conn: Connection[Any], query: str | pgsql.Composed, params: dict[str, Any]
) -> Iterator[Copy]:
    with conn.cursor() as cur, cur.copy(query, params or None) as copy:
        yield copy


@asynccontextmanager
async def _copy_async(
    conn: AsyncConnection[Any], query: str | pgsql.Composed, params: dict[str, Any]
) -> AsyncIterator[AsyncCopy]:
    async with conn.cursor() as cur, cur.copy(query, params or None) as copy:
        yield copy


class QueryFile:
    """The queries of one sql/queries/<area>.sql file, as attributes."""

    def __init__(self, path: Path, queries: dict[str, Query]) -> None:
        self.path = path
        self._queries = queries
        for name, query in queries.items():
            if name in vars(self) or hasattr(QueryFile, name):
                raise QueryFileError(f"{path}:{query.line}: {name!r} is a reserved name")
            setattr(self, name, query)

    def __getattr__(self, name: str) -> Query:
        # Only reached for a name that is not a query: say which file lacks it.
        raise AttributeError(f"{self.path.name} has no query named {name!r}")

    def __iter__(self) -> Iterator[Query]:
        return iter(self._queries.values())

    def __len__(self) -> int:
        return len(self._queries)


def parse_queries(text: str, path: Path) -> dict[str, Query]:
    """Parse a query file's text; raise QueryFileError naming path:line on any fault."""
    queries: dict[str, Query] = {}
    header: tuple[str, Kind, int] | None = None
    doc: list[str] = []
    body: list[str] = []

    def fail(line: int, message: str) -> QueryFileError:
        return QueryFileError(f"{path}:{line}: {message}")

    def finish() -> None:
        if header is None:
            return
        name, kind, line = header
        sql = "\n".join(body).strip()
        if not sql:
            raise fail(line, f"query {name} has no SQL")
        if name in queries:
            raise fail(line, f"query {name} is defined twice (first at line {queries[name].line})")
        params = frozenset(m["name"] for m in _PARAM.finditer(sql))
        queries[name] = Query(name, kind, sql, "\n".join(doc).strip(), path, line, params)

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        match = _NAME_LINE.match(line)
        if match:
            finish()
            spec = _NAME_SPEC.match(match["rest"].strip())
            if spec is None:
                raise fail(number, "expected '-- name: snake_case_name :kind'")
            kind = spec["kind"]
            if kind not in KINDS:
                raise fail(number, f"unknown kind :{kind} (use one of :{', :'.join(KINDS)})")
            header = (spec["name"], kind, number)
            doc, body = [], []
        elif header is None:
            if line and not line.startswith("--"):
                raise fail(number, "SQL before the first '-- name:' line")
        elif not body and line.startswith("--"):
            doc.append(line[2:].strip())
        else:
            body.append(raw)
    finish()
    return queries


@cache
def load_file(path: Path) -> QueryFile:
    """The named queries of one .sql file, parsed once per process."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QueryFileError(f"{path}: no such query file") from None
    return QueryFile(path, parse_queries(text, path))


def load(area: str) -> QueryFile:
    """The named queries of sql/queries/<area>.sql."""
    return load_file(sql_root() / "queries" / f"{area}.sql")
