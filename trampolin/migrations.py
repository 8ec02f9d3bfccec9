"""Apply, inspect and roll back the SQL migrations of sql/migrations/ on a database.

The files are read by yoyo (trampolin.migration_files); applying is ours, so that
each migration and the record of it commit in ONE transaction, under a
PostgreSQL advisory lock that dies with its session, with a lock_timeout, and
with a checksum that makes later edits of an applied file visible.
"""

from __future__ import annotations

import getpass
import hashlib
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.pq import TransactionStatus

from trampolin import queries
from trampolin.db import connect, connection_path, pins_sessions
from trampolin.errors import ConfigError, InvalidInput, MigrationDrift, MigrationError
from trampolin.migration_files import (
    MigrationFile,
    MigrationStatus,
    Script,
    Statement,
    compare,
    migrations_dir,
    read_migration_files,
)

# pg_advisory_lock key: the first 8 bytes of sha256("trampolin.migrate").
LOCK_KEY = int.from_bytes(hashlib.sha256(b"trampolin.migrate").digest()[:8], "big", signed=True)
DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_LOCK_WAIT = 300.0

Reporter = Callable[[str], None]


class Migrator:
    """Migrations of one database; each public method opens and closes its own connection."""

    def __init__(
        self,
        url: str,
        *,
        directory: Path | None = None,
        lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        report: Reporter = lambda message: None,
    ) -> None:
        self.url = url
        self.directory = directory or migrations_dir()
        self.lock_timeout = lock_timeout
        self.lock_wait = lock_wait
        self.report = report
        self.queries = queries.load("migrations")

    def status(self) -> list[MigrationStatus]:
        """Every migration: applied, pending, edited (checksum differs) or missing (no file)."""
        files = read_migration_files(self.directory)
        with connect(self.url, autocommit=True) as conn:
            applied = self._applied(conn)
        return compare(files, applied)

    def apply(self) -> list[MigrationFile]:
        """Apply every pending migration in order; returns those applied (none if up to date)."""
        files = read_migration_files(self.directory)
        done = []
        with connect(self.url, autocommit=True) as conn, self._locked(conn):
            refuse_unadopted_prisma(conn)
            applied = self._applied(conn, create=True)
            _refuse_drift(compare(files, applied))
            self._adopt_unchecked(conn, files, applied)
            for migration in files:
                if migration.id in applied:
                    continue
                started = time.monotonic()
                self._run(conn, migration, migration.script(), "apply")
                done.append(migration)
                self.report(f"applied {migration.id} ({time.monotonic() - started:.2f}s)")
        return done

    def rollback_plan(self, count: int = 1) -> list[str]:
        """Ids of the migrations ``rollback(count)`` would undo, newest first."""
        if count < 1:
            raise InvalidInput("--count must be at least 1")
        with connect(self.url, autocommit=True) as conn:
            return list(self._applied(conn))[::-1][:count]

    def rollback(self, count: int = 1, *, expected: list[str] | None = None) -> list[MigrationFile]:
        """Roll back the ``count`` most recently applied migrations, newest first.

        ``expected``: the plan a person confirmed; if another deploy changed the
        database since, nothing is rolled back.
        """
        if count < 1:
            raise InvalidInput("--count must be at least 1")
        files = {migration.id: migration for migration in read_migration_files(self.directory)}
        undone = []
        with connect(self.url, autocommit=True) as conn, self._locked(conn):
            applied = self._applied(conn, create=True)
            _refuse_drift(compare(list(files.values()), applied))
            plan = list(applied)[::-1][:count]
            if expected is not None and plan != expected:
                raise MigrationError(
                    "the applied migrations changed since the rollback was confirmed "
                    f"(now: {', '.join(plan) or 'none'}); nothing was rolled back"
                )
            chosen = [files[migration_id] for migration_id in plan]
            scripts = [(migration, migration.rollback_script()) for migration in chosen]
            missing = [migration for migration, script in scripts if script is None]
            if missing:  # checked up front, so that a rollback never stops half-way
                raise MigrationError(
                    "cannot roll back: "
                    + ", ".join(f"{m.rollback_path.name} does not exist" for m in missing)
                )
            for migration, script in scripts:
                assert script is not None
                started = time.monotonic()
                self._run(conn, migration, script, "rollback")
                undone.append(migration)
                self.report(f"rolled back {migration.id} ({time.monotonic() - started:.2f}s)")
        return undone

    def _applied(
        self, conn: psycopg.Connection[Any], *, create: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Applied migrations by id; ``create`` makes the bookkeeping tables if missing."""
        tables = self.queries.bookkeeping_exists.one(conn)
        assert tables is not None
        if create and not (tables["migrations"] and tables["checksums"]):
            self.queries.create_bookkeeping.exec(conn)
            tables = self.queries.bookkeeping_exists.one(conn)
            assert tables is not None
        if not tables["migrations"]:
            return {}
        if tables["checksums"]:
            rows = self.queries.applied_migrations.many(conn)
        else:
            rows = self.queries.applied_migrations_without_checksums.many(conn)
        return {row["migration_id"]: row for row in rows}

    def _adopt_unchecked(
        self,
        conn: psycopg.Connection[Any],
        files: list[MigrationFile],
        applied: dict[str, dict[str, Any]],
    ) -> None:
        # Migrations applied by plain yoyo have no checksum yet: record the file's.
        for migration in files:
            if migration.id in applied and applied[migration.id]["checksum"] is None:
                self.queries.record_checksum.exec(
                    conn, migration_id=migration.id, checksum=migration.checksum
                )

    def _run(
        self,
        conn: psycopg.Connection[Any],
        migration: MigrationFile,
        script: Script,
        direction: Literal["apply", "rollback"],
    ) -> None:
        if script.transactional:
            try:
                with conn.transaction():
                    self.queries.set_lock_timeout.exec(
                        conn, timeout=self.lock_timeout, is_local=True
                    )
                    self._execute(conn, script)
                    self._record(conn, migration, direction)
            except psycopg.Error as exc:
                raise _failure(exc, script.path, rolled_back=True) from None
            return
        # CREATE INDEX CONCURRENTLY and friends: one statement, outside a transaction.
        # A kill before the record commits leaves it done but unrecorded, and the
        # next migrate runs it again: write it re-runnable (IF NOT EXISTS).
        try:
            self.queries.set_lock_timeout.exec(conn, timeout=self.lock_timeout, is_local=False)
            self._execute(conn, script)
        except psycopg.Error as exc:
            failure = _failure(exc, script.path, rolled_back=False)
            raise MigrationError(f"{failure}{self._invalid_index_advice(conn)}") from None
        finally:
            if not conn.broken:
                self.queries.set_lock_timeout.exec(conn, timeout="0", is_local=False)
        # A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind, and
        # IF NOT EXISTS then skips it: never record a migration over one.
        advice = self._invalid_index_advice(conn)
        if advice:
            raise MigrationError(f"{script.path}: not recorded as applied{advice}")
        with conn.transaction():
            self._record(conn, migration, direction)

    def _invalid_index_advice(self, conn: psycopg.Connection[Any]) -> str:
        if conn.broken:
            return ""
        names = [row["name"] for row in self.queries.invalid_indexes.many(conn)]
        if not names:
            return ""
        drops = "; ".join(f"DROP INDEX CONCURRENTLY {name}" for name in names)
        return (
            f"; INVALID index left by a failed CREATE INDEX CONCURRENTLY: {', '.join(names)} "
            f"— run {drops}; then migrate again"
        )

    def _execute(self, conn: psycopg.Connection[Any], script: Script) -> None:
        for statement in script.statements:
            try:
                conn.execute(statement.sql.encode("utf-8"))
            except psycopg.Error as exc:
                exc.add_note(f"{script.path}:{_error_line(exc, statement)}")
                raise
            if script.transactional and conn.info.transaction_status != TransactionStatus.INTRANS:
                raise MigrationError(
                    f"{script.path}:{statement.line}: this statement ended the migration's "
                    "transaction; no transaction control in migrations"
                )

    def _record(
        self,
        conn: psycopg.Connection[Any],
        migration: MigrationFile,
        direction: Literal["apply", "rollback"],
    ) -> None:
        migration_id = migration.id
        if direction == "apply":
            self.queries.mark_applied.exec(
                conn, migration_hash=migration.yoyo_hash, migration_id=migration_id
            )
            self.queries.record_checksum.exec(
                conn, checksum=migration.checksum, migration_id=migration_id
            )
        else:
            self.queries.unmark_applied.exec(conn, migration_id=migration_id)
            self.queries.forget_checksum.exec(conn, migration_id=migration_id)
        self.queries.log_operation.exec(
            conn,
            migration_hash=migration.yoyo_hash,
            migration_id=migration_id,
            operation=direction,
            username=_username(),
            hostname=socket.gethostname(),
        )

    @contextmanager
    def _locked(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        if connection_path(conn) == "proxied" and not pins_sessions(conn, self.url):
            raise ConfigError(
                "the database URL goes through a transaction-mode pooler (e.g. PgBouncer): "
                "migrations need a direct connection for their lock; set DIRECT_URL to the "
                "database's direct URL"
            )
        # A killed migrator's backend must notice at once and let go of the lock,
        # even in the middle of a long statement (PostgreSQL 14+).
        self.queries.watch_client_connection.one(conn, interval="1s")
        # Poll rather than block in pg_advisory_lock: a waiter blocked inside a
        # statement holds a snapshot, and CREATE INDEX CONCURRENTLY in the lock
        # holder would wait for it, a deadlock.
        deadline = time.monotonic() + self.lock_wait
        told = False
        while not self.queries.try_lock.one(conn, key=LOCK_KEY)["locked"]:  # type: ignore[index]
            if time.monotonic() > deadline:
                raise MigrationError(
                    f"another trampolin migrate held the migration lock for over "
                    f"{self.lock_wait:.0f}s; check for a stuck deploy (pg_stat_activity, "
                    f"application_name = 'trampolin') or raise --lock-wait"
                )
            if not told:
                self.report("waiting for another migrate to finish")
                told = True
            time.sleep(0.2)
        try:
            yield
        finally:
            if not conn.closed and not conn.broken:
                self.queries.unlock.one(conn, key=LOCK_KEY)


def unadopted_prisma(conn: psycopg.Connection[Any]) -> bool:
    """True for a database that Prisma Migrate made and trampolin has not taken over yet."""
    row = queries.load("migrations").unadopted_prisma_database.one(conn)
    return row is not None and bool(row["unadopted"])


def refuse_unadopted_prisma(conn: psycopg.Connection[Any]) -> None:
    """MigrationError, naming `trampolin adopt prisma`, if unadopted_prisma(conn)."""
    if unadopted_prisma(conn):
        raise MigrationError(
            "this database was made by Prisma Migrate (_prisma_migrations) and holds no "
            "trampolin migrations: take it over with `trampolin adopt prisma`; nothing was changed"
        )


def _refuse_drift(statuses: list[MigrationStatus]) -> None:
    problems = []
    for status in statuses:
        if status.state == "edited":
            problems.append(
                f"{status.path} was edited after it was applied: restore it "
                f"(git checkout -- {_shown(status.path)}) and put the change in a new "
                "migration (trampolin migrate new NAME)"
            )
        elif status.state == "missing":
            problems.append(
                f"applied migration {status.id} has no file in sql/migrations: restore "
                f"{status.id}.sql from version control"
            )
    if problems:
        raise MigrationDrift("refusing to migrate: " + "; ".join(problems))


def _shown(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _failure(exc: psycopg.Error, path: Path, *, rolled_back: bool) -> MigrationError:
    where = next((note for note in getattr(exc, "__notes__", [])), str(path))
    message = (exc.diag.message_primary or str(exc)).strip()
    if exc.sqlstate == "3F000":  # no schema selected to create in
        message += (
            " (the URL's ?schema= or search_path names a schema that does not exist: "
            "CREATE SCHEMA it first)"
        )
    if exc.sqlstate == "55P03":
        message += (
            " (lock_timeout: another transaction holds a lock this migration needs; "
            "retry when it ends, or raise --lock-timeout)"
        )
    state = (
        "the database is as it was before this migration"
        if rolled_back
        else "this non-transactional migration may be partly done; fix and re-run"
    )
    return MigrationError(f"{where}: {message}; {state}")


def _error_line(exc: psycopg.Error, statement: Statement) -> int:
    position = exc.diag.statement_position
    if position is None:
        return statement.line
    return statement.line + statement.sql[: int(position) - 1].count("\n")


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


# -- Inside a caller's transaction (trampolin adopt) --------------------------


def apply_within(
    conn: psycopg.Connection[Any],
    *,
    directory: Path | None = None,
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
    report: Reporter = lambda message: None,
) -> list[MigrationFile]:
    """Apply every pending migration on ``conn`` inside the transaction it is in.

    Nothing commits: the caller's commit keeps the migrations with the rest of
    its work, its rollback undoes them. The migration lock is held to the end
    of that transaction; MigrationError at once if another migrate holds it,
    or if a pending migration cannot run in a transaction.
    """
    if conn.info.transaction_status != TransactionStatus.INTRANS:
        raise MigrationError("apply_within needs a connection inside a transaction")
    migrator = Migrator("", directory=directory, lock_timeout=lock_timeout, report=report)
    if not migrator.queries.try_xact_lock.one(conn, key=LOCK_KEY)["locked"]:  # type: ignore[index]
        raise MigrationError("another trampolin migrate is running; try again when it is done")
    files = read_migration_files(migrator.directory)
    applied = migrator._applied(conn, create=True)
    _refuse_drift(compare(files, applied))
    migrator._adopt_unchecked(conn, files, applied)
    pending = [(m, m.script()) for m in files if m.id not in applied]
    for migration, script in pending:
        if not script.transactional:
            raise MigrationError(
                f"{migration.path.name} cannot run inside a transaction: "
                "apply it with `trampolin migrate` first"
            )
    for migration, script in pending:
        migrator._run(conn, migration, script, "apply")
        report(f"applied {migration.id}")
    return [migration for migration, _ in pending]
