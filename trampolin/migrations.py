"""Apply, inspect, create and roll back the yoyo SQL migrations in sql/migrations/.

yoyo reads the files (order, ``-- depends:``, ``-- transactional:``, the
leading comment as description, statement splitting); applying is ours, so
that each migration and the record of it commit in ONE transaction, under a
PostgreSQL advisory lock that dies with its session, with a lock_timeout, and
with a checksum that makes later edits of an applied file visible.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.pq import TransactionStatus

from trampolin.db import connect, connection_path, pins_sessions
from trampolin.errors import ConfigError, InvalidInput, MigrationDrift, MigrationError
from trampolin.paths import sql_root
from trampolin.queries import load_queries

# pg_advisory_lock key: the first 8 bytes of sha256("trampolin.migrate").
LOCK_KEY = int.from_bytes(hashlib.sha256(b"trampolin.migrate").digest()[:8], "big", signed=True)
DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_LOCK_WAIT = 300.0

State = Literal["applied", "pending", "edited", "missing"]
Reporter = Callable[[str], None]


def migrations_dir() -> Path:
    """sql/migrations, or $TRAMPOLIN_MIGRATIONS_DIR when set."""
    configured = os.environ.get("TRAMPOLIN_MIGRATIONS_DIR")
    return Path(configured) if configured else sql_root() / "migrations"


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int


@dataclass(frozen=True)
class MigrationFile:
    """One migration file as yoyo reads it, plus its checksum.

    Only the leading comments are read up front; the statements are split
    (with yoyo's sqlparse-based reader) when they are needed, so that status
    and an up-to-date migrate stay cheap.
    """

    id: str
    path: Path
    description: str
    transactional: bool
    depends: frozenset[str]
    checksum: str

    @property
    def yoyo_hash(self) -> str:
        return hashlib.sha256(self.id.encode("utf-8")).hexdigest()

    @property
    def rollback_path(self) -> Path:
        return self.path.with_name(f"{self.id}.rollback.sql")

    def script(self) -> Script:
        """The forward statements, split and checked."""
        return _script(self.path, self.transactional)

    def rollback_script(self) -> Script | None:
        """The rollback file's statements, or None when there is no rollback file.

        A rollback file may carry its own ``-- transactional:`` line; without
        one it runs as the forward file does.
        """
        if not self.rollback_path.exists():
            return None
        directives = _directives(self.rollback_path, self.rollback_path.read_bytes())[0]
        transactional = directives.get("transactional")
        return _script(
            self.rollback_path,
            self.transactional
            if transactional is None
            else _boolean(transactional, self.rollback_path),
        )


@dataclass(frozen=True)
class Script:
    """Statements of one file, to run in one transaction or (one statement) without."""

    path: Path
    transactional: bool
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class MigrationStatus:
    id: str
    description: str
    state: State
    applied_at: datetime | None
    path: Path | None


def read_migration_files(directory: Path | None = None) -> list[MigrationFile]:
    """The migration files of ``directory`` in apply order (yoyo's order and depends)."""
    from yoyo.migrations import read_migrations

    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"{directory}: no migrations directory")
    found = list(read_migrations(str(directory)))
    files = {}
    for migration in found:
        path = Path(migration.path)
        if path.suffix != ".sql":
            raise MigrationError(f"{path}: only .sql migrations are supported")
        files[migration.id] = _read_file(migration.id, path)
    if any(migration.depends for migration in files.values()):
        from yoyo.migrations import topological_sort

        return [files[migration.id] for migration in topological_sort(found)]
    return list(files.values())  # yoyo lists them in file name order


def _read_file(migration_id: str, path: Path) -> MigrationFile:
    raw = path.read_bytes()
    directives, leading_comment = _directives(path, raw)
    paragraph = leading_comment.strip().split("\n\n", 1)[0]
    description = " ".join(line.strip() for line in paragraph.splitlines())
    return MigrationFile(
        id=migration_id,
        path=path,
        description=description.strip(),
        transactional=_boolean(directives.get("transactional", "true"), path),
        depends=frozenset(directives.get("depends", "").split()),
        checksum=hashlib.sha256(raw).hexdigest(),
    )


def _directives(path: Path, raw: bytes) -> tuple[dict[str, str], str]:
    """yoyo's ``-- name: value`` directives and the leading comment of a file."""
    from yoyo.migrations import parse_metadata_from_sql_comments

    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationError(f"{path}: not UTF-8 ({exc.reason})") from None
    directives, leading_comment, _ = parse_metadata_from_sql_comments(source)
    return directives, leading_comment


def _boolean(value: str, path: Path) -> bool:
    normalized = value.strip().lower()
    if normalized not in ("true", "false"):
        raise MigrationError(f"{path}: '-- transactional:' must be true or false")
    return normalized == "true"


# Statements that would end the transaction a migration runs in, and with it
# the guarantee that the migration and its record commit together.
_TRANSACTION_CONTROL = re.compile(
    r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ABORT|ROLLBACK(?!\s+TO\b)|PREPARE\s+TRANSACTION)\b",
    re.IGNORECASE,
)


def _script(path: Path, transactional: bool) -> Script:
    statements = _split(path)
    if not transactional and len(statements) != 1:
        raise MigrationError(
            f"{path}: a '-- transactional: false' file must hold exactly one statement "
            f"(it has {len(statements)}); split it into one file per statement"
        )
    if transactional:
        for statement in statements:
            if _TRANSACTION_CONTROL.match(_without_leading_comments(statement.sql)):
                raise MigrationError(
                    f"{path}:{statement.line}: no BEGIN, COMMIT or ROLLBACK in a migration: "
                    "trampolin runs each file in one transaction with the record of it"
                )
    return Script(path, transactional, statements)


def _without_leading_comments(sql: str) -> str:
    return re.sub(r"^(\s*(--[^\n]*(\n|$)|/\*.*?\*/))*\s*", "", sql, flags=re.DOTALL)


def _split(path: Path) -> tuple[Statement, ...]:
    from yoyo.migrations import read_sql_migration

    try:
        _, _, statements = read_sql_migration(str(path))
        return _locate(statements, path.read_text("utf-8"))
    except UnicodeDecodeError as exc:
        raise MigrationError(f"{path}: not UTF-8 ({exc.reason})") from None


def _locate(statements: list[str], source: str) -> tuple[Statement, ...]:
    """Pair each statement with the line of the file it starts on."""
    located = []
    offset = 0
    for text in statements:
        body = text.strip()
        found = source.find(body, offset)
        start = found if found >= 0 else offset
        located.append(Statement(body, source.count("\n", 0, start) + 1))
        offset = start + len(body)
    return tuple(located)


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
        self.queries = load_queries("migrations")

    def status(self) -> list[MigrationStatus]:
        """Every migration: applied, pending, edited (checksum differs) or missing (no file)."""
        files = read_migration_files(self.directory)
        with connect(self.url, autocommit=True) as conn:
            applied = self._applied(conn)
        return _compare(files, applied)

    def apply(self) -> list[MigrationFile]:
        """Apply every pending migration in order; returns those applied (none if up to date)."""
        files = read_migration_files(self.directory)
        done = []
        with connect(self.url, autocommit=True) as conn, self._locked(conn):
            applied = self._applied(conn, create=True)
            _refuse_drift(_compare(files, applied))
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
            _refuse_drift(_compare(list(files.values()), applied))
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


def _compare(
    files: list[MigrationFile], applied: dict[str, dict[str, Any]]
) -> list[MigrationStatus]:
    statuses = []
    known = set()
    for migration in files:
        known.add(migration.id)
        record = applied.get(migration.id)
        state: State = "pending"
        if record is not None:
            edited = record["checksum"] not in (None, migration.checksum)
            state = "edited" if edited else "applied"
        statuses.append(
            MigrationStatus(
                migration.id,
                migration.description,
                state,
                record["applied_at"] if record else None,
                migration.path,
            )
        )
    for migration_id, record in applied.items():
        if migration_id not in known:
            statuses.append(
                MigrationStatus(migration_id, "", "missing", record["applied_at"], None)
            )
    return statuses


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


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_TEMPLATE = """\
-- {title}.
--
-- Runs in one transaction with the record that it was applied, under
-- lock_timeout; no BEGIN or COMMIT here. For CREATE INDEX CONCURRENTLY, put
-- "-- transactional: false" on the first line and keep exactly one statement
-- (with IF NOT EXISTS; if it fails part-way, migrate names the INVALID index
-- to drop before it runs again).

"""
_ROLLBACK_TEMPLATE = """\
-- Undo {id}: statements that reverse it, run in one transaction.

"""


def new_migration(name: str, directory: Path | None = None) -> tuple[Path, Path]:
    """Write the next migration file and its rollback file; returns both paths."""
    directory = directory or migrations_dir()
    if not _NAME.match(name):
        raise InvalidInput(
            f"migration name {name!r}: use lower snake_case, a letter first, at most 60 "
            "characters (e.g. add_invoices_table)"
        )
    if "site-packages" in directory.parts:
        raise MigrationError(
            f"{directory} is inside an installed package; run `migrate new` in the source checkout"
        )
    numbers = [
        int(match.group(1))
        for path in directory.glob("*.sql")
        if (match := re.match(r"^(\d+)_", path.name))
    ]
    migration_id = f"{max(numbers, default=0) + 1:04d}_{name}"
    forward = directory / f"{migration_id}.sql"
    rollback = directory / f"{migration_id}.rollback.sql"
    if any(directory.glob(f"*_{name}.sql")):
        raise InvalidInput(f"a migration named {name!r} exists already in {directory}")
    forward.write_text(_TEMPLATE.format(title=name.replace("_", " ").capitalize()), "utf-8")
    rollback.write_text(_ROLLBACK_TEMPLATE.format(id=migration_id), "utf-8")
    return forward, rollback
