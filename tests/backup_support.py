"""Shared by the backup tests: sample checks, leftovers, passwords in URLs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from tests.support import ROOT
from trampolin import queries
from trampolin.backup import TableRows, user_tables
from trampolin.migration_files import read_migration_files

BACKUP_QUERIES = queries.load_file(ROOT / "tests" / "sql" / "backup.sql")
TABLES = 20
MIGRATIONS = len(read_migration_files())


def tables_at(url: str) -> list[TableRows]:
    with psycopg.connect(url, autocommit=True) as conn:
        return user_tables(conn)


def snapshot(url: str, q: queries.QueryFile = BACKUP_QUERIES) -> dict[str, Any]:
    """Every table's row count and digest, the large objects and the sequences."""
    with psycopg.connect(url, autocommit=True) as conn:
        state: dict[str, Any] = {
            table.name: conn.execute(q.table_digest.composed({"table": table.name})).fetchone()
            for table in sorted(user_tables(conn), key=lambda t: t.name)
        }
        state["large objects"] = q.large_objects.one(conn)
        state["sequences"] = q.sequences.many(conn)
    return state


def scratch_left(server_url: str, q: queries.QueryFile = BACKUP_QUERIES, pid: int = 0) -> list[str]:
    """The scratch databases of verifies run by process ``pid`` (default: this one)."""
    pattern = f"trampolin\\_verify\\_{pid or os.getpid()}\\_%"
    with psycopg.connect(server_url, autocommit=True) as conn:
        return [row["name"] for row in q.databases_like.many(conn, pattern=pattern)]


def with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    userinfo, host = rest.split("@", 1)
    return f"{scheme}://{userinfo.split(':')[0]}:{quote(password, safe='')}@{host}"


def holding_the_password(password: str, tmp: Path, excluded: set[int]) -> list[str]:
    """What holds ``password``: files under ``tmp`` (the killed process's TMPDIR), files
    named trampolin* in /tmp, and processes (by /proc/*/environ) other than ``excluded``."""
    secret = password.encode()
    files = [*tmp.rglob("*"), *Path("/tmp").glob("trampolin*")]
    found = [str(path) for path in files if path.is_file() and secret in path.read_bytes()]
    for environ in Path("/proc").glob("[0-9]*/environ"):
        pid = int(environ.parent.name)
        try:
            if pid not in excluded and secret in environ.read_bytes():
                found.append(f"process {pid}: {(environ.parent / 'cmdline').read_bytes()!r}")
        except OSError:  # ended meanwhile
            continue
    return found


def descendants(pid: int) -> set[int]:
    """The processes that ``pid`` started, and theirs, running now."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
