"""Load the named SQL queries of sql/queries/*.sql and run them on a connection.

A query file is a list of blocks, each introduced by one line::

    -- name: get_user_by_email :one
    -- The user with that email, matched case-insensitively.
    SELECT ... WHERE lower(email) = lower(%(email)s);

The comment lines right under the name are the query's documentation.
Kinds: ``:one`` (a row or None), ``:many`` (a list of rows), ``:exec``
(nothing), ``:execrows`` (the affected row count) and ``:copy`` (a COPY
statement, run through psycopg's copy protocol). Files are parsed once, on
first use; a malformed file raises QueryFileError naming file:line.

psycopg is imported where a query runs, not here: a query's text can be read
(``trampolin restore`` hands one to psql) without its ~80 ms import.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from trampolin.errors import QueryFileError
from trampolin.paths import sql_root

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql as pgsql
    from psycopg.rows import DictRow

__all__ = ["KINDS", "Query", "QueryFile", "load_queries", "load_query_file", "sql_root"]

Kind = Literal["one", "many", "exec", "execrows", "copy"]
KINDS: tuple[Kind, ...] = ("one", "many", "exec", "execrows", "copy")

_NAME_LINE = re.compile(r"^--\s*name:\s*(?P<rest>.*)$")
_NAME_SPEC = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\s+:(?P<kind>[a-z]+)\s*$")
_PARAM = re.compile(r"%\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)s")


class Query(NamedTuple):
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

    def composed(self, identifiers: Mapping[str, str | pgsql.Composable]) -> pgsql.Composed:
        """The SQL with its ``{placeholders}`` filled by quoted identifiers.

        A value that is already a psycopg ``Composable`` (e.g. a list of
        identifiers joined by ``pgsql.SQL(", ")``) is used as is.
        """
        from psycopg import sql as pgsql

        return pgsql.SQL(self.sql).format(
            **{
                key: value if isinstance(value, pgsql.Composable) else pgsql.Identifier(value)
                for key, value in identifiers.items()
            }
        )

    def _check(self, kind: Kind, params: Mapping[str, Any]) -> None:
        if kind != self.kind:
            raise TypeError(f"query {self.name} ({self.where}) is :{self.kind}, not :{kind}")
        missing = self.params.difference(params)
        if missing:
            raise TypeError(f"query {self.name} ({self.where}) needs {', '.join(sorted(missing))}")

    def one(self, conn: psycopg.Connection[Any], **params: Any) -> DictRow | None:
        """The first row as a dict, or None when there is none."""
        from psycopg.rows import dict_row

        self._check("one", params)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(self.sql, params)
            return cur.fetchone()

    def one_tuple(self, conn: psycopg.Connection[Any], **params: Any) -> tuple[Any, ...] | None:
        """The first row as a plain tuple, or None: for hot paths (no dict per row)."""
        from psycopg.rows import tuple_row

        self._check("one", params)
        # Whatever the connection's row factory; a client cursor needs no close().
        return conn.cursor(row_factory=tuple_row).execute(self.sql, params).fetchone()

    def many(self, conn: psycopg.Connection[Any], **params: Any) -> list[DictRow]:
        """All rows, as dicts."""
        from psycopg.rows import dict_row

        self._check("many", params)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(self.sql, params)
            return cur.fetchall()

    def exec(
        self,
        conn: psycopg.Connection[Any],
        *,
        identifiers: Mapping[str, str] | None = None,
        **params: Any,
    ) -> None:
        """Run the statement; ``identifiers`` fill its ``{placeholders}`` (see composed)."""
        self._check("exec", params)
        query = self.composed(identifiers) if identifiers else self.sql
        conn.execute(query, params or None)

    def execrows(self, conn: psycopg.Connection[Any], **params: Any) -> int:
        """The number of rows the statement affected."""
        self._check("execrows", params)
        return conn.execute(self.sql, params or None).rowcount

    @contextmanager
    def copy(
        self,
        conn: psycopg.Connection[Any],
        *,
        identifiers: Mapping[str, str | pgsql.Composable] | None = None,
        **params: Any,
    ) -> Iterator[psycopg.Copy]:
        """A psycopg Copy object for this COPY statement (``identifiers``: see composed)."""
        self._check("copy", params)
        query = self.composed(identifiers) if identifiers else self.sql
        with conn.cursor() as cur, cur.copy(query, params or None) as copy:
            yield copy


class QueryFile:
    """The queries of one sql/queries/<area>.sql file, as attributes."""

    def __init__(self, path: Path, queries: dict[str, Query]) -> None:
        self.path = path
        self._queries = queries

    def __getattr__(self, name: str) -> Query:
        try:
            query = self._queries[name]
        except KeyError:
            raise AttributeError(f"{self.path.name} has no query named {name!r}") from None
        # Cache it as a plain attribute: __getattr__ runs only after a failed normal
        # lookup, which costs microseconds on every call of a hot repository method.
        setattr(self, name, query)
        return query

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
        match = _NAME_LINE.match(raw.strip())
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
            if raw.strip() and not raw.strip().startswith("--"):
                raise fail(number, "SQL before the first '-- name:' line")
        elif not body and raw.strip().startswith("--"):
            doc.append(raw.strip()[2:].strip())
        else:
            body.append(raw)
    finish()
    return queries


@cache
def load_query_file(path: Path) -> QueryFile:
    """The named queries of one .sql file, parsed once per process."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QueryFileError(f"{path}: no such query file") from None
    return QueryFile(path, parse_queries(text, path))


def load_queries(area: str) -> QueryFile:
    """The named queries of sql/queries/<area>.sql."""
    return load_query_file(sql_root() / "queries" / f"{area}.sql")
