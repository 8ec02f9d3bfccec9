"""Take over the Trampolin app's Prisma-made database: every row into trampolin's tables.

``plan(conn)`` judges the database and changes nothing (the dry run).
``adopt(conn)`` does it in one transaction block (``db.atomic``): it locks the
app's tables, applies trampolin's migrations, moves every row with one
INSERT ... SELECT per table (sql/queries/adopt.sql; only the distinct analysis
URLs pass through the client, a batch at a time, to be normalized), derives
plans, search links and usage counters, checks every count, then moves the
app's tables, enum types and _prisma_migrations into schema prisma_archive. A
refused row, an error or a kill leaves the database as it was. ``dry_run(url)``
and ``adopt_database(url)`` own their connection. The rules and the report
live in trampolin.adopt_plan.
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
    Derived,
    Facts,
    Moved,
    PlanLimits,
    Report,
    Skipped,
    State,
    moves,
    recognise,
    report_as_json,
    table,
    table_skips,
)
from trampolin.analysis_urls import normalize_url
from trampolin.db import atomic, connect
from trampolin.errors import AdoptionRefused, InvalidInput, TrampolinError
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
    ("Subscription", _q.move_subscriptions),
    ("Search", _q.move_searches),  # only when the production script made it
    ("UrlAnalysis", _q.move_url_analyses),
    ("CsvUpload", _q.move_csv_uploads),
    ("CsvRow", _q.move_csv_rows),
    ("Refund", _q.move_refunds),
)


def dry_run(url: str) -> Report:
    """plan() in a transaction of its own, read-only but for a temporary table, rolled back."""
    with connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            _q.create_url_keys.exec(conn)  # a read-only transaction cannot create one
            _q.read_only.exec(conn)
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
    _url_keys(conn)
    skipped = _skipped(conn, facts) + _refused(conn, _q.refused_csv_rows)
    return _report("plan", facts, rows, skipped, _plans(conn))


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
        _q.bulk_settings.exec(conn)
        facts = _facts(conn)
        if recognise(facts) == "adopted":
            return _already(conn, facts)
        _lock(conn, list(facts.columns), lock_timeout)
        apply_within(conn, report=progress)
        rows = _rows(conn, facts)
        _url_keys(conn)
        skipped = _skipped(conn, facts)
        plans = _plans(conn)
        if skipped:
            _refuse(_report("plan", facts, rows, skipped, plans))
        for name, query in _MOVES:
            if name in rows:
                _move(conn, name, query, rows, facts, progress)
        derived = _derive(conn, facts, plans, progress)
        report = _report("adopted", facts, rows, [], plans, derived)
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


def _skipped(conn: psycopg.Connection[Any], facts: Facts) -> list[Skipped]:
    """Every row that cannot be taken over, but for the contents of "CsvRow"."""
    existing = [row["name"] for row in _q.existing_tables.many(conn, tables=list(TARGET_TABLES))]
    skipped = table_skips({name: _count(conn, name) for name in existing})
    skipped += _refused(conn, _q.refused_rows)
    if "Search" in facts.columns:
        skipped += _refused(conn, _q.refused_search_rows)
    return skipped


def _url_keys(conn: psycopg.Connection[Any]) -> None:
    """adopt_url_keys: each distinct "UrlAnalysis".url beside the URL trampolin stores.

    The URLs come through a cursor a batch at a time, so memory stays flat.
    """
    found = _q.url_keys_exist.one(conn)
    if not (found and found["found"]):
        _q.create_url_keys.exec(conn)
    _q.clear_url_keys.exec(conn)
    _q.open_app_urls.exec(conn)
    while batch := _q.fetch_app_urls.many(conn):
        with _q.copy_url_keys.copy(conn) as copy:
            for row in batch:
                copy.write_row((row["url"], _stored_url(row["url"])))
    _q.close_app_urls.exec(conn)


def _stored_url(url: str) -> str:
    """The URL normalized as a new search would; one the rule refuses stays as it is."""
    try:
        return normalize_url(url)
    except InvalidInput:
        return url


def _plans(conn: psycopg.Connection[Any]) -> tuple[PlanLimits, ...]:
    return tuple(PlanLimits(**row) for row in _q.app_plans.many(conn))


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


def _report(
    state: State,
    facts: Facts,
    rows: dict[str, int],
    skipped: list[Skipped],
    plans: tuple[PlanLimits, ...] = (),
    derived: tuple[Derived, ...] = (),
) -> Report:
    migrations = tuple(
        name for name, finished, rolled_back in facts.migrations if finished and not rolled_back
    )
    return Report(
        state, facts.schema, moves(rows), tuple(skipped), migrations, plans=plans, derived=derived
    )


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
    try:
        with atomic(conn):  # a savepoint: after a row csv_rows refuses, the checks still run
            moved = query.execrows(conn)
    except psycopg.errors.IntegrityError:
        if name != "CsvRow":
            raise
        moved = None  # a rowIndex below 0 or twice in an upload: refused_csv_rows names it
    if moved is not None:
        into = table(name).into
        progress(f'"{name}": {moved} rows -> {into} ({time.monotonic() - started:.1f}s)')
    if name == "Role" or moved == rows[name]:
        return
    if name == "CsvRow":  # its checks run in the move itself: see move_csv_rows
        _refuse(_report("plan", facts, rows, _refused(conn, _q.refused_csv_rows)))
    raise TrampolinError(f'moved {moved} of the {rows[name]} rows of "{name}"; nothing was changed')


def _derive(
    conn: psycopg.Connection[Any],
    facts: Facts,
    plans: tuple[PlanLimits, ...],
    progress: Progress,
) -> tuple[Derived, ...]:
    """The rows no Prisma table maps onto: plans, search links, usage counters and ledger."""
    created = _q.create_plans.many(
        conn,
        price_ids=[p.price_id for p in plans],
        monthly_limits=[p.monthly_limit for p in plans],
        trial_limits=[p.trial_limit for p in plans],
    )
    derived = [Derived("plans", len(created), '"Subscription" prices')]
    if "Search" in facts.columns:
        links = _q.link_search_analyses.execrows(conn)
        derived.append(Derived("search_analyses", links, '"UrlAnalysis"."searchId"'))
    usage = _q.adopt_usage.one(conn)
    assert usage is not None
    if usage["periods"] != usage["ledger_rows"]:  # cannot happen: one statement writes both
        raise TrampolinError("the usage counters and their ledger rows differ; nothing was changed")
    derived.append(Derived("usage_periods", usage["periods"], '"Subscription" counters'))
    derived.append(Derived("usage_ledger", usage["ledger_rows"], "one 'adopted' row per period"))
    for d in derived:
        progress(f"{d.rows} rows -> {d.into} (from {d.source})")
    return tuple(derived)


def _archive(conn: psycopg.Connection[Any], facts: Facts, report: Report) -> None:
    _q.create_archive.exec(conn)
    for name in facts.columns:
        _q.archive_table.exec(conn, identifiers={"table": name})
    for row in _q.enum_types.many(conn, types=list(ENUM_TYPES)):
        _q.archive_type.exec(conn, identifiers={"type": row["name"]})
    _q.create_adoption_record.exec(conn)
    _q.insert_adoption_record.exec(conn, report=Jsonb(report_as_json(report)))
