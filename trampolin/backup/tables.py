"""The user tables of a database: their sizes and rows, and what a restore would replace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from trampolin import queries
from trampolin.errors import BackupError

_q = queries.load("backup")
_admin = queries.load("admin")

# Tables smaller than this are counted exactly where an estimate would do.
COUNT_BELOW_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class TableRows:
    schema: str
    name: str
    rows: int
    exact: bool = True

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def shown(self) -> str:
        """``public.users (12 rows)``, or ``(~12,000,000 rows)`` for an estimate."""
        return f"{self.qualified} ({'' if self.exact else '~'}{self.rows:,} rows)"


def server_major(conn: Connection[Any]) -> int:
    """The server's major version (e.g. 15)."""
    row = _admin.server_version.one(conn)
    assert row is not None
    return int(row["version_num"]) // 10000


def table_sizes(conn: Connection[Any]) -> dict[str, int]:
    """Each user table's size in bytes, by qualified name."""
    return {f"{r['schema_name']}.{r['table_name']}": r["bytes"] for r in _q.user_tables.many(conn)}


def user_tables(conn: Connection[Any], *, exact: bool = False) -> list[TableRows]:
    """The user tables, largest first, with their rows: counted if ``exact`` or small,
    else the planner's estimate."""
    tables = []
    for row in _q.user_tables.many(conn):
        schema, name = row["schema_name"], row["table_name"]
        if exact or row["bytes"] < COUNT_BELOW_BYTES:
            query = _q.count_rows.composed({"schema": schema, "table": name})
            counted = conn.execute(query).fetchone()
            assert counted is not None
            tables.append(TableRows(schema, name, int(counted[0])))
        else:
            tables.append(TableRows(schema, name, int(row["estimate"]), exact=False))
    return tables


def refusal(where: str, present: Sequence[TableRows], in_archive: Sequence[str]) -> BackupError:
    """The error for a restore into ``where``, which holds ``present``: which of them the
    archive's tables would replace (the five largest by name), and how many are kept."""
    archived = set(in_archive)
    replaced = sorted((t for t in present if t.qualified in archived), key=lambda t: -t.rows)
    kept = len(present) - len(replaced)
    total = sum(table.rows for table in replaced)
    shown = ", ".join(table.shown for table in replaced[:5])
    if len(replaced) > 5:
        shown += f" and {len(replaced) - 5} more"
    about = "" if all(table.exact for table in replaced) else "~"
    what = (
        f"{len(replaced)} table(s) with {about}{total:,} rows: {shown}" if replaced else "no table"
    )
    also = f"; {kept} other table(s) would be kept as they are" if kept else ""
    return BackupError(
        f"refusing to restore into {where}, which already holds data; the restore "
        f"would replace {what}{also}; pass --yes to replace them"
    )
