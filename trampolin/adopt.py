"""Take over the Trampolin app's Prisma-made database: every row into trampolin's tables.

``plan(conn)`` judges the database and changes nothing (the dry run).
``adopt(conn)`` does it in one transaction block (``db.atomic``): it locks the
app's tables, applies trampolin's migrations, moves every row with one
INSERT ... SELECT per table (sql/queries/adopt.sql; no row passes through the
client), checks every count, then moves the app's tables, enum types and
_prisma_migrations into schema prisma_archive. A refused row, an error or a
kill leaves the database as it was. ``dry_run(url)`` and ``adopt_database(url)``
own their connection. The rules and the report live in trampolin.adopt_plan.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.types.json import Jsonb

from trampolin import queries
from trampolin.adopt_plan import (
    ENUM_TYPES,
    LIST_LIMIT,
    PRISMA_TABLES,
    TARGET_TABLES,
    Facts,
    Moved,
    Report,
    Skipped,
    State,
    moves,
    recognise,
    report_as_json,
    table,
    table_skips,
)
from trampolin.db import atomic, connect
from trampolin.errors import AdoptionRefused, TrampolinError
from trampolin.migrations import apply_within

_q = queries.load("adopt")

Progress = Callable[[str], None]
DEFAULT_LOCK_TIMEOUT = "5s"

# The Prisma table and the query that moves its rows, in foreign-key order.
_MOVES = (
    ("Role", _q.move_roles),
    ("User", _q.move_users),
    ("Account", _q.move_accounts),
    ("Session", _q.move_sessions),
    ("VerificationToken", _q.move_verification_tokens),
    ("CsvUpload", _q.move_csv_uploads),
    ("CsvRow", _q.move_csv_rows),
)


def dry_run(url: str) -> Report:
    """plan() in a read-only transaction of its own, rolled back."""
    with connect(url) as conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            return plan(conn)
        finally:
            conn.rollback()


def adopt_database(
    url: str, *, progress: Progress = lambda message: None, lock_timeout: str = DEFAULT_LOCK_TIMEOUT
) -> Report:
    """adopt() in a transaction of its own: committed if it succeeds, else rolled back."""
    with connect(url) as conn:
        return adopt(conn, progress=progress, lock_timeout=lock_timeout)


def plan(conn: psycopg.Connection[Any]) -> Report:
    """What adoption would do, and every row it could not take; changes nothing.

    AdoptionRefused if this is not the app's Prisma database.
    """
    facts = _facts(conn)
    if recognise(facts) == "adopted":
        return _already(conn, facts)
    rows = _rows(conn, facts)
    skipped = _table_skips(conn, rows) + _refused(conn, _q.refused_rows)
    skipped += _refused(conn, _q.refused_csv_rows)
    return _report("plan", facts, rows, skipped)


def adopt(
    conn: psycopg.Connection[Any],
    *,
    progress: Progress = lambda message: None,
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
) -> Report:
    """Take the database over inside ``db.atomic(conn)``; the "adopted" report.

    Nothing is committed here when the caller holds a transaction. If the
    database was adopted before, changes nothing and says so. AdoptionRefused
    (with the report) if a row cannot be taken over; nothing is changed then.
    """
    with atomic(conn):
        _q.watch_client.one(conn)
        facts = _facts(conn)
        if recognise(facts) == "adopted":
            return _already(conn, facts)
        _lock(conn, list(facts.columns), lock_timeout)
        apply_within(conn, report=progress)
        rows = _rows(conn, facts)
        skipped = _table_skips(conn, rows) + _refused(conn, _q.refused_rows)
        if skipped:
            _refuse(_report("plan", facts, rows, skipped))
        for name, query in _MOVES:
            _move(conn, name, query, rows, facts, progress)
        report = _report("adopted", facts, rows, [])
        _archive(conn, facts, report)
        progress(f"archived the app's tables in schema prisma_archive ({len(facts.columns)})")
    return report


def _facts(conn: psycopg.Connection[Any]) -> Facts:
    found = _q.survey.one(conn)
    assert found is not None
    columns: dict[str, dict[str, str]] = {}
    for row in _q.table_columns.many(conn, tables=[spec.name for spec in PRISMA_TABLES]):
        columns.setdefault(row["table_name"], {})[row["column_name"]] = row["column_type"]
    migrations: tuple[tuple[str, Any, Any], ...] = ()
    if found["prisma_migrations"]:
        migrations = tuple(
            (row["migration_name"], row["finished_at"], row["rolled_back_at"])
            for row in _q.prisma_migrations.many(conn)
        )
    return Facts(
        schema=found["schema"],
        prisma_migrations=found["prisma_migrations"],
        archive_schema=found["archive_schema"],
        adopted=found["adopted"],
        columns=columns,
        migrations=migrations,
    )


def _already(conn: psycopg.Connection[Any], facts: Facts) -> Report:
    """The report of an adoption done before, as its record keeps it."""
    record = _q.adoption_record.one(conn)
    assert record is not None
    tables = record["report"].get("tables", {})
    return Report(
        "already adopted",
        facts.schema,
        tuple(Moved(name, t["rows"], t["into"]) for name, t in tables.items()),
        migrations=tuple(record["report"].get("prisma_migrations", ())),
        adopted_at=record["adopted_at"],
    )


def _rows(conn: psycopg.Connection[Any], facts: Facts) -> dict[str, int]:
    return {name: _count(conn, name) for name in facts.columns}


def _count(conn: psycopg.Connection[Any], name: str) -> int:
    with _q.table_rows.copy(conn, identifiers={"table": name}) as copy:
        copy.set_types(["int8"])
        ((rows,),) = list(copy.rows())
    return int(rows)


def _table_skips(conn: psycopg.Connection[Any], rows: dict[str, int]) -> list[Skipped]:
    existing = [row["name"] for row in _q.existing_tables.many(conn, tables=list(TARGET_TABLES))]
    passwords = _q.users_with_password.one(conn)
    assert passwords is not None
    return table_skips(
        rows, {name: _count(conn, name) for name in existing}, int(passwords["count_rows"])
    )


def _refused(conn: psycopg.Connection[Any], query: queries.Query) -> list[Skipped]:
    """The rows ``query`` refuses: at most LIST_LIMIT named, the rest of each problem counted."""
    found = query.many(conn, limit=LIST_LIMIT)
    found.sort(key=lambda row: (row["table_name"], row["problem"], row["id"]))
    skipped = []
    shown: Counter[tuple[str, str]] = Counter()
    totals: dict[tuple[str, str], int] = {}
    for row in found:
        key = (row["table_name"], row["problem"])
        shown[key] += 1
        totals[key] = int(row["total"])
        detail = f": {row['detail']}" if row["detail"] else ""
        skipped.append(Skipped(row["table_name"], row["id"], row["problem"] + detail))
    skipped.extend(
        Skipped(table_name, None, f"not listed: {problem}", totals[table_name, problem] - n)
        for (table_name, problem), n in shown.items()
        if totals[table_name, problem] > n
    )
    return skipped


def _report(state: State, facts: Facts, rows: dict[str, int], skipped: list[Skipped]) -> Report:
    migrations = tuple(
        name for name, finished, rolled_back in facts.migrations if finished and not rolled_back
    )
    return Report(state, facts.schema, moves(rows), tuple(skipped), migrations)


def _refuse(report: Report) -> None:
    raise AdoptionRefused(
        f"{report.skipped_total} row(s) cannot be taken over; nothing was changed", report
    )


def _lock(conn: psycopg.Connection[Any], tables: list[str], lock_timeout: str) -> None:
    _q.set_lock_timeout.exec(conn, timeout=lock_timeout)
    names = pgsql.SQL(", ").join(pgsql.Identifier(name) for name in tables)
    try:
        with atomic(conn):
            _q.lock_tables.exec(conn, identifiers={"tables": names})
    except psycopg.errors.LockNotAvailable:
        raise AdoptionRefused(
            f"the app's tables are in use (no lock within {lock_timeout}): stop the app "
            "(and anything else using them), then adopt"
        ) from None


def _move(
    conn: psycopg.Connection[Any],
    name: str,
    query: queries.Query,
    rows: dict[str, int],
    facts: Facts,
    progress: Progress,
) -> None:
    started = time.monotonic()
    moved = query.execrows(conn)
    into = table(name).into
    progress(f'"{name}": {moved} rows -> {into} ({time.monotonic() - started:.1f}s)')
    if name == "Role" or moved == rows[name]:
        return
    if name == "CsvRow":  # its checks run in the move itself: see move_csv_rows
        _refuse(_report("plan", facts, rows, _refused(conn, _q.refused_csv_rows)))
    raise TrampolinError(f'moved {moved} of the {rows[name]} rows of "{name}"; nothing was changed')


def _archive(conn: psycopg.Connection[Any], facts: Facts, report: Report) -> None:
    _q.create_archive.exec(conn)
    for name in facts.columns:
        _q.archive_table.exec(conn, identifiers={"table": name})
    for row in _q.enum_types.many(conn, types=list(ENUM_TYPES)):
        _q.archive_type.exec(conn, identifiers={"type": row["name"]})
    _q.create_adoption_record.exec(conn)
    _q.insert_adoption_record.exec(conn, report=Jsonb(report_as_json(report)))
