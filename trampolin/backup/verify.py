"""``trampolin backup verify``: prove that an archive restores, in scratch databases
that are dropped afterwards; and drop those of verifies that were killed.

While it runs, verify holds a connection named after its scratch database
(``application_name``); the server ends that session when the process dies,
however it dies, and drop_abandoned_scratch() (run by the next verify and by
``trampolin doctor``) drops the scratch databases that no session names or uses.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.conninfo import make_conninfo

from trampolin import queries
from trampolin.backup.archive import Listing, check_archive, list_archive
from trampolin.backup.connection import describe
from trampolin.backup.restore import restore
from trampolin.backup.running import Progress
from trampolin.backup.tables import TableRows, user_tables
from trampolin.db import connect
from trampolin.errors import BackupError
from trampolin.migration_files import MigrationStatus
from trampolin.migrations import Migrator
from trampolin.values import first_line

MIGRATION_TABLES = ("_yoyo_migration", "_trampolin_migration_checksums")
_q = queries.load("backup")
_admin = queries.load("admin")


@dataclass(frozen=True)
class VerifyResult:
    archive: Path
    size: int
    listing: Listing
    scratch: str
    seconds: float
    tables: tuple[TableRows, ...]
    migrations: tuple[MigrationStatus, ...]


def verify(
    archive: Path | str, server_url: str, *, progress: Progress | None = None
) -> VerifyResult:
    """Restore ``archive`` into a scratch database on ``server_url``'s server and check it.

    Checks the listing, the migration records, that every table the recorded
    migrations create is there, and counts every table's rows. The scratch
    databases are dropped; any failure raises BackupError.
    """
    path = check_archive(archive)
    listing = list_archive(path)
    started = time.monotonic()
    scratch = f"trampolin_verify_{os.getpid()}_{secrets.token_hex(3)}"
    scratch_url = make_conninfo(server_url, dbname=scratch)
    reference_url = make_conninfo(server_url, dbname=f"{scratch}_ref")
    with connect(server_url, autocommit=True, application_name=scratch) as lifeline:
        try:
            for name in (scratch, f"{scratch}_ref"):
                _create(lifeline, name)
            restored = restore(path, scratch_url, progress=progress)
            with connect(scratch_url, autocommit=True) as conn:
                tables = sorted(user_tables(conn, exact=True), key=lambda t: t.qualified)
            problems = _problems(listing, tables)
            if not problems:
                problems = _missing_tables(restored.migrations, reference_url, tables)
        finally:
            for name in (scratch, f"{scratch}_ref"):
                _admin.drop_database.exec(lifeline, identifiers={"database": name})
    if problems:
        raise BackupError(f"verify of {path} failed: " + "; ".join(problems))
    seconds = time.monotonic() - started
    return VerifyResult(
        path, path.stat().st_size, listing, describe(scratch_url), seconds, tuple(tables),
        restored.migrations,
    )  # fmt: skip


def drop_abandoned_scratch(server_url: str) -> list[str]:
    """Drop the scratch databases on ``server_url``'s server of verifies that ended
    without dropping them (killed), unless a session still uses them; returns the
    names of those dropped."""
    dropped = []
    with connect(server_url, autocommit=True) as conn:
        for row in _q.abandoned_scratch_databases.many(conn):
            try:
                _q.drop_unused_database.exec(conn, identifiers={"database": row["name"]})
            except psycopg.errors.ObjectInUse:  # connected to since: a later run
                continue
            dropped.append(row["name"])
    return dropped


def _create(conn: Connection[Any], name: str) -> None:
    try:
        _admin.create_database.exec(conn, identifiers={"database": name})
    except psycopg.Error as exc:
        raise BackupError(
            f"cannot create the scratch database {name}: {first_line(exc)} "
            "(use --embedded to verify on the local embedded server)"
        ) from None


def _problems(listing: Listing, tables: Sequence[TableRows]) -> list[str]:
    """What the listing and the restored tables show to be missing."""
    problems = []
    missing_data = sorted(set(listing.tables) - set(listing.table_data))
    if missing_data:
        problems.append(f"the archive has no data for {', '.join(missing_data)}")
    for record in MIGRATION_TABLES:
        # In whatever schema the database keeps them (Prisma's ?schema=, search_path).
        rows = [table.rows for table in tables if table.name == record]
        if not rows:
            problems.append(f"the migration records ({record}) are missing")
        elif max(rows) == 0:
            problems.append(f"the migration records ({record}) are empty")
    return problems


def _missing_tables(
    statuses: Sequence[MigrationStatus], reference_url: str, tables: Sequence[TableRows]
) -> list[str]:
    """Tables that the archive's applied migrations create but the restore lacks: the
    reference is an empty database with exactly those migrations applied."""
    unknown = [status.id for status in statuses if status.state == "missing"]
    if unknown:
        return [
            f"the archive records migration(s) {', '.join(unknown)} that this trampolin "
            "does not have; verify with the version that made the dump"
        ]
    applied = [status for status in statuses if status.state in ("applied", "edited")]
    with tempfile.TemporaryDirectory(prefix="trampolin-verify-") as tmp:
        for status in applied:
            assert status.path is not None
            shutil.copy(status.path, Path(tmp) / status.path.name)
        if applied:
            Migrator(reference_url, directory=Path(tmp)).apply()
    with connect(reference_url, autocommit=True) as conn:
        expected = {table.qualified for table in user_tables(conn)}
    missing = sorted(expected - {table.qualified for table in tables})
    if missing:
        return [f"table(s) {', '.join(missing)} missing from the restored database"]
    return []
