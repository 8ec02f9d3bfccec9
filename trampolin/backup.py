"""Dump, restore and verify a database with pg_dump and pg_restore (custom format).

Which pg_dump / pg_restore runs, and how it connects without a password in
argv, is trampolin.pgtools' business.

A restore is all or nothing. It runs through one psql session
(trampolin.psql): ``pg_restore --single-transaction -f -`` writes its script,
BEGIN first and COMMIT last, into psql, which runs it with ON_ERROR_STOP; the
target is asked before (into an empty target, by psql itself at a gate, so
that nothing waits) and the migration records are read after, all on one
connection. pg_restore 17+ into an older server is the one special case: its
script sets ``transaction_timeout``, which older servers reject, so the script
passes through this process with that single line removed. Without a usable
psql: ``pg_restore --single-transaction --exit-on-error``, and psycopg asks.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, cast

from trampolin import queries
from trampolin.errors import BackupError, TrampolinError
from trampolin.pgtools import (
    Connection,
    Tool,
    child_connection,
    choose_tool,
    describe,
    find_programs,
    hide,
    probe,
    server_major,
)
from trampolin.psql import PsqlSession, psql_session
from trampolin.queries import sql_root

if TYPE_CHECKING:
    from trampolin.migration_files import MigrationFile, MigrationStatus

Progress = Callable[[str], None]
T = TypeVar("T")

MAGIC = b"PGDMP"
DUMP_FLAGS = ("--format=custom", "-b")  # -b: large objects (--blobs before 16)
RESTORE_FLAGS = (
    "--clean",
    "--if-exists",
    "--no-acl",
    "--no-owner",
    "--single-transaction",
    "--exit-on-error",
)
MIGRATION_TABLES = ("_yoyo_migration", "_trampolin_migration_checksums")
# The one line pg_restore 17+ writes that servers before 17 reject.
TRANSACTION_TIMEOUT_LINE = b"SET transaction_timeout = 0;\n"
TRANSACTION_TIMEOUT_SINCE = 17

_TABLE_LINE = re.compile(
    r'pg_(?:dump|restore): (?:dumping contents of|processing data for) table "(.+)"'
)
_LIST_ENTRY = re.compile(r"^\d+; \d+ \d+ (?P<type>TABLE DATA|TABLE) (?P<schema>\S+) (?P<name>\S+) ")


# -- running the tools --------------------------------------------------------


class _Outcome:
    """How a client tool's run went; filled in as it runs."""

    def __init__(self, returncode: int, errors: list[str], tables: list[str]) -> None:
        self.returncode = returncode
        self.errors = errors
        self.tables = tables


def _drain(stream: IO[bytes], name: str, progress: Progress, verb: str, out: _Outcome) -> None:
    """Read a child's stderr: report tables as they go, keep the error lines."""
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip()
        match = _TABLE_LINE.search(line)
        if match:
            out.tables.append(match[1])
            progress(f"{verb} {match[1]}")
        elif "error:" in line.lower() or "fatal:" in line.lower():
            out.errors.append(line.removeprefix(f"{name}: ").removeprefix("error: "))
        elif line.startswith(("DETAIL", "HINT", "Command was")) and out.errors:
            out.errors.append(line)


def _run(
    argv: list[str],
    conn: Connection,
    progress: Progress,
    verb: str,
    started: Callable[[], None] = lambda: None,
) -> _Outcome:
    """Run a client tool to its end; ``started()`` is called as soon as it runs."""
    out = _Outcome(0, [], [])
    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=conn.env,
    ) as child:
        try:
            started()
            assert child.stderr is not None
            _drain(child.stderr, Path(argv[0]).name, progress, verb, out)
            out.returncode = child.wait()
        except BaseException:  # interrupted or terminated: the tool stops with us
            child.kill()
            raise
    return out


def _failure(what: str, out: _Outcome, url: str, after: str = "") -> BackupError:
    errors = [line for line in out.errors if not line.startswith("Command was")]
    detail = "; ".join(dict.fromkeys(errors)) or f"exit code {out.returncode}"
    if "end of file" in detail or "could not read" in detail or "did not find magic" in detail:
        detail += " (the archive is truncated or corrupt)"
    return BackupError(hide(f"{what} failed: {detail}{after}", url))


def _quiet(_: str) -> None:
    pass


# -- dump ---------------------------------------------------------------------


class DumpResult(NamedTuple):
    path: Path
    size: int
    seconds: float
    tables: int
    tool: str


def dump(
    url: str,
    out_path: Path | str,
    *,
    progress: Progress = _quiet,
    extra_args: Sequence[str] = (),
) -> DumpResult:
    """Dump ``url`` to ``out_path`` with pg_dump -F c -b; the file appears whole or not at all.

    ``extra_args`` go to pg_dump as they are (tests use --exclude-table).
    """
    out = Path(out_path)
    if out.is_dir():
        raise BackupError(f"{out} is a directory; give a file name, e.g. {out / 'backup.dump'}")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent}: no such directory")
    programs = find_programs("pg_dump")
    first = next(programs, None)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    started = time.monotonic()
    try:
        with child_connection(url) as conn:
            # The first pg_dump found runs without asking the server its version (a
            # connection and psycopg's import), and is asked its own version while it
            # runs: pg_dump itself refuses a newer server. Only if it fails is the
            # server asked, as choosing first would have: a connection problem or an
            # unfit tool then reads exactly the same.
            outcome = None
            tool: Tool | None = None
            if first is not None:
                probed: list[Tool | None] = []
                outcome = _dump_with(
                    first, partial, extra_args, conn, progress,
                    started=lambda: probed.append(probe("pg_dump", first)),
                )  # fmt: skip
                tool = probed[0]
            if tool is None or outcome is None or outcome.returncode != 0:
                fitting = [] if tool is None else [tool]
                others = (found for path in programs if (found := probe("pg_dump", path)))
                chosen = choose_tool("pg_dump", chain(fitting, others), server_major(url))
                if chosen != tool or outcome is None:
                    outcome = _dump_with(chosen.path, partial, extra_args, conn, progress)
                tool = chosen
        assert tool is not None
        if outcome.returncode != 0:
            raise _failure(f"{tool}", outcome, url, f"; {out} was not written")
        partial.replace(out)
    finally:
        with suppress(FileNotFoundError):
            partial.unlink()
    return DumpResult(
        out, out.stat().st_size, time.monotonic() - started, len(outcome.tables), str(tool)
    )


def _dump_with(
    program: Path,
    partial: Path,
    extra_args: Sequence[str],
    conn: Connection,
    progress: Progress,
    started: Callable[[], None] = lambda: None,
) -> _Outcome:
    # Readable by its owner only: a dump holds every user's data and OAuth tokens.
    os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    argv = [
        str(program), *DUMP_FLAGS, "--verbose", "--no-password",
        f"--file={partial}", *extra_args, f"--dbname={conn.dbname_arg}",
    ]  # fmt: skip
    return _run(argv, conn, progress, "dumping", started)


# -- archive listing ----------------------------------------------------------


class Listing(NamedTuple):
    """What ``pg_restore --list`` says about an archive."""

    entries: int
    tables: tuple[str, ...]
    table_data: tuple[str, ...]
    dumped_by: str
    dumped_from: str
    tool: Tool


def check_archive(archive: Path | str) -> Path:
    """``archive`` as a Path, or BackupError if it is not a custom-format pg_dump archive."""
    path = Path(archive)
    try:
        with path.open("rb") as handle:
            head = handle.read(len(MAGIC) + 1)
    except FileNotFoundError:
        raise BackupError(f"{path}: no such file") from None
    except OSError as exc:
        raise BackupError(f"{path}: cannot read ({exc.strerror})") from None
    if head[: len(MAGIC)] != MAGIC:
        raise BackupError(
            f"{path} is not a pg_dump custom-format archive (make one with trampolin dump)"
        )
    if head[len(MAGIC) :] != b"\x01":  # archive format 1.x since PostgreSQL 7.1
        raise BackupError(f"{path}: the archive header is corrupt")
    return path


def list_archive(archive: Path | str, min_major: int = 0) -> Listing:
    """The archive's table of contents, read by the first pg_restore >= ``min_major`` that can."""
    path = check_archive(archive)
    too_new = ""
    tried: list[Tool] = []
    for program in find_programs("pg_restore"):
        # The listing runs while the program is asked its version.
        try:
            lister = subprocess.Popen(
                [str(program), "--list", str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except OSError:  # not a program this machine can run
            continue
        with lister:
            tool = probe("pg_restore", program)
            if tool is None or tool.major < min_major:
                lister.kill()
                tried.extend([tool] if tool else [])
                continue
            stdout, stderr = lister.communicate()
        if lister.returncode == 0:
            return _parse_listing(stdout, tool)
        lines = stderr.strip().splitlines()
        error = lines[-1].removeprefix("pg_restore: error: ") if lines else "no message"
        if "unsupported version" in error:
            too_new = error
            tried.append(tool)
            continue
        raise BackupError(
            f"{path}: {tool} cannot read it: {error} (the archive is truncated or corrupt)"
        )
    if not too_new:
        choose_tool("pg_restore", tried, min_major)  # raises: which version is needed
    newest = max(tool.major for tool in tried)
    raise BackupError(
        f"{path} was made by a newer pg_dump than pg_restore {newest} can read ({too_new}); "
        "install newer PostgreSQL client tools or set TRAMPOLIN_PG_BIN"
    )


def _parse_listing(text: str, tool: Tool) -> Listing:
    tables: list[str] = []
    data: list[str] = []
    entries = 0
    dumped_by = dumped_from = "?"
    for line in text.splitlines():
        if line.startswith(";"):
            if "Dumped by pg_dump version:" in line:
                dumped_by = line.split(":", 1)[1].split()[0]
            elif "Dumped from database version:" in line:
                dumped_from = line.split(":", 1)[1].split()[0]
            continue
        if not line.strip():
            continue
        entries += 1
        match = _LIST_ENTRY.match(line)
        if match:
            name = f"{match['schema']}.{match['name']}"
            (data if match["type"] == "TABLE DATA" else tables).append(name)
    return Listing(entries, tuple(tables), tuple(data), dumped_by, dumped_from, tool)


# -- restore ------------------------------------------------------------------


class TableRows(NamedTuple):
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


class RestoreResult(NamedTuple):
    archive: Path
    target: str
    seconds: float
    tables: int
    replaced: tuple[TableRows, ...]
    migrations: tuple[MigrationStatus, ...]
    tool: str


# Tables smaller than this are counted exactly where an estimate would do.
COUNT_BELOW_BYTES = 64 * 1024 * 1024


def user_tables(url: str, *, exact: bool = False) -> list[TableRows]:
    """The user tables at ``url``, largest first, with their rows: counted if ``exact`` or
    small, else estimated."""
    from trampolin.db import connect

    backup_queries = queries.load("backup")
    tables = []
    with connect(url, autocommit=True) as conn:
        for row in backup_queries.user_tables.many(conn):
            schema, name = row["schema_name"], row["table_name"]
            if exact or row["bytes"] < COUNT_BELOW_BYTES:
                query = backup_queries.count_rows.composed({"schema": schema, "table": name})
                counted = conn.execute(query).fetchone()
                assert counted is not None
                tables.append(TableRows(schema, name, int(counted[0])))
            else:
                tables.append(TableRows(schema, name, int(row["estimate"]), exact=False))
    return tables


def _refusal(url: str, present: list[TableRows], listing: Listing) -> BackupError:
    in_archive = set(listing.tables)
    replaced = [table for table in present if table.qualified in in_archive]
    kept = len(present) - len(replaced)
    total = sum(table.rows for table in replaced)
    replaced.sort(key=lambda table: -table.rows)
    shown = ", ".join(table.shown for table in replaced[:5])
    if len(replaced) > 5:
        shown += f" and {len(replaced) - 5} more"
    about = "" if all(table.exact for table in replaced) else "~"
    what = (
        f"{len(replaced)} table(s) with {about}{total:,} rows: {shown}" if replaced else "no table"
    )
    also = f"; {kept} other table(s) would be kept as they are" if kept else ""
    return BackupError(
        f"refusing to restore into {describe(url)}, which already holds data; the restore "
        f"would replace {what}{also}; pass --yes to replace them"
    )


def restore(
    archive: Path | str,
    target_url: str,
    *,
    yes: bool = False,
    progress: Progress = _quiet,
) -> RestoreResult:
    """Restore ``archive`` into ``target_url`` in one transaction, then read its migration status.

    Refuses a target that holds tables unless ``yes``; on any failure the target is unchanged.
    """
    path = check_archive(archive)
    with psql_session(target_url) as psql:
        done = _restore_into_empty(path, target_url, psql, progress) if psql else None
    if done is not None:
        return done
    with psql_session(target_url) as psql:
        return _restore(path, target_url, psql, yes=yes, progress=progress)


def _restore_into_empty(
    path: Path, target_url: str, psql: PsqlSession, progress: Progress
) -> RestoreResult | None:
    """The common case, without a round trip for the checks: psql itself decides, at a
    gate (sql/psql/restore_gate.sql), whether to run the script that the first
    pg_restore found writes into it at once: only if the target holds no table and
    that pg_restore suits the server. psql's own version stands for that
    pg_restore's (both must come from one directory: _one_build), so that nothing
    waits for a ``pg_restore --version``; it runs alongside, for the result.

    None, with nothing run, if the gate said no or anything is not as expected:
    _restore then takes the careful path and says what went wrong.
    """
    program = next(find_programs("pg_restore"), None)
    if program is None or not _one_build(psql.program, program):
        return None  # the script must go through the psql beside its pg_restore
    question = queries.load("backup").restore_target.sql
    gate = (sql_root() / "psql" / "restore_gate.sql").read_text(encoding="utf-8")
    columns = ["version_num", "has_tables"]
    variables = {"tool_version_num": ":VERSION_NUM"}  # psql puts in its own
    if not psql.start_script_if(question, columns, gate, variables):
        return None
    started = time.monotonic()
    files_ready = _Background(_migration_files, start=False)
    named = _Background(lambda: probe("pg_restore", program), start=False)

    def ran() -> None:  # while psql connects and asks, the CPU is idle: use it
        files_ready.start()
        named.start()

    def went_on() -> bool:  # psql's own decision, at the gate
        answer = psql.answer()
        return answer is not None and len(answer) == 1 and answer[0][-1:] == ["t"]

    out = _stream_into(psql, program, path, progress, ran, go=went_on, then=status_question())
    if out is None:
        return None
    tool = named.result() or program.name  # it ran: --version failing is next to impossible
    if out.returncode != 0:
        files_ready.join()
        if any("unsupported version" in line for line in out.errors):
            return None  # a newer pg_restore may read it: the careful path tries them
        raise _restore_failure(path, tool, out, target_url)
    seconds = time.monotonic() - started
    migrations = migration_status(target_url, files_ready.result(), psql.answer())
    return RestoreResult(
        path, describe(target_url), seconds, len(out.tables), (), migrations, str(tool)
    )


def _restore(
    path: Path, target_url: str, psql: PsqlSession | None, *, yes: bool, progress: Progress
) -> RestoreResult:
    # pg_restore --list runs while psql asks the target; read with the first
    # pg_restore that can, it is the listing list_archive(path, major) makes
    # whenever that tool fits the server (else the listing is made again).
    early = _Background(lambda: list_archive(path))
    try:
        question = queries.load("backup").restore_target.sql
        overview = _target_overview(psql.ask(question) if psql else None)
        if overview is None:  # no psql, or it failed: psycopg says why
            major = server_major(target_url)
            present = user_tables(target_url)
        else:
            major, has_tables = overview
            present = user_tables(target_url) if has_tables else []
    except BaseException:
        early.join()
        raise
    try:
        listing = early.result()
    except BackupError:
        listing = list_archive(path, min_major=major)
    if listing.tool.major < major:
        listing = list_archive(path, min_major=major)
    if present and not yes:
        raise _refusal(target_url, present, listing)
    in_archive = set(listing.tables)
    replaced = tuple(table for table in present if table.qualified in in_archive)
    started = time.monotonic()
    tool = listing.tool
    # The migration status afterwards needs the migration files (~8 ms of CPU to
    # read): read from the moment pg_restore runs; not earlier, where the thread
    # would hold the GIL while pg_restore waits to be spawned.
    files_ready = _Background(_migration_files, start=False)
    # The script goes through the psql that answered, if it is the one beside this
    # pg_restore: a pg_restore's script may hold meta-commands (\restrict, since
    # 17.6, 16.10, 15.14, ...) that only a psql as new as itself knows.
    fits = overview is not None and psql is not None and _one_build(psql.program, tool.path)
    beside = psql if fits else None
    question = status_question()
    if beside is not None:
        outcome = _restore_into(beside, tool, path, major, progress, files_ready.start, question)
    else:
        outcome = _pg_restore(tool, path, target_url, major, progress, files_ready.start)
    if outcome.returncode != 0:
        files_ready.join()
        raise _restore_failure(path, tool, outcome, target_url)
    seconds = time.monotonic() - started
    if beside is not None:
        rows = beside.answer()  # asked right behind the script
    else:  # None at once if psql is not there or has failed
        rows = psql.ask(question) if psql is not None else None
    migrations = migration_status(target_url, files_ready.result(), rows)
    return RestoreResult(
        path, describe(target_url), seconds, len(outcome.tables), replaced, migrations, str(tool)
    )


def _restore_into(
    psql: PsqlSession,
    tool: Tool,
    archive: Path,
    server: int,
    progress: Progress,
    started: Callable[[], None],
    then: str | None = None,
) -> _Outcome:
    """pg_restore ``archive`` through ``psql``, in one transaction (_stream_into)."""
    if not psql.start_script():
        return _Outcome(1, list(psql.errors), [])
    filtered = tool.major >= TRANSACTION_TIMEOUT_SINCE > server
    out = _stream_into(psql, tool.path, archive, progress, started, filtered=filtered, then=then)
    if out is None:  # nothing ran
        return _Outcome(1, [f"{tool.path} could not be run"], [])
    return out


def _stream_into(
    psql: PsqlSession,
    program: Path,
    archive: Path,
    progress: Progress,
    started: Callable[[], None],
    *,
    filtered: bool = False,
    go: Callable[[], bool] = lambda: True,
    then: str | None = None,
) -> _Outcome | None:
    """``pg_restore --single-transaction -f -`` straight into the input of ``psql``.

    The script is one transaction: BEGIN first, COMMIT last, written by pg_restore
    only once it has read the whole archive (without --single-transaction it would
    commit large objects on their own). ON_ERROR_STOP ends psql at the first error,
    and with it the transaction; if pg_restore fails, psql is stopped before the
    COMMIT it never got.

    ``started()`` is called as soon as pg_restore runs, and ``go()`` asked then: if
    it says no, or pg_restore cannot run at all, both stop and nothing is run
    (None). The script passes
    through this process only when it must be ``filtered``: pg_restore 17+ writes
    a transaction_timeout SET that older servers reject. ``then``: psql's last
    question, asked right behind the script (PsqlSession.confirm); its rows come
    from psql.answer().
    """
    argv = [str(program), *RESTORE_FLAGS, "--verbose", "--file=-", str(archive)]
    out = _Outcome(1, [], [])
    try:
        source = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if filtered else psql.script_input,
            stderr=subprocess.PIPE,
        )
    except OSError:  # not a program this machine can run (it was not probed)
        psql.abort()
        return None
    with source:
        try:
            copier = _Background(lambda: _filter_into(source, psql)) if filtered else None
            started()
            if not go():
                source.kill()
                psql.abort()  # nothing ran: the gate stopped psql
                return None
            assert source.stderr is not None
            _drain(source.stderr, "pg_restore", progress, "restoring", out)
            out.returncode = source.wait()
            if copier is not None:
                try:
                    copier.result()
                except OSError:  # psql stopped at an error; its errors say which
                    out.returncode = out.returncode or 1
            if out.returncode == 0 and psql.confirm(then):
                return out
        except BaseException:  # interrupted or terminated: both stop, nothing commits
            source.kill()
            psql.abort()
            raise
    psql.abort()  # before any COMMIT pg_restore did not write: rolled back
    out.returncode = out.returncode or 1
    out.errors.extend(psql.errors)
    return out


def _filter_into(source: subprocess.Popen[bytes], psql: PsqlSession) -> None:
    """Copy pg_restore's script into psql without the transaction_timeout line; if psql
    has ended, stop pg_restore too (it would block on a full pipe)."""
    assert source.stdout is not None
    try:
        _copy_without_timeout(source.stdout, psql.script_input)
    except OSError:
        source.kill()
        raise


def _pg_restore(
    tool: Tool,
    path: Path,
    target_url: str,
    server: int,
    progress: Progress,
    started: Callable[[], None],
) -> _Outcome:
    """pg_restore --single-transaction ``path`` into ``target_url``, for when no psql
    session answered; pg_restore 17+ into an older server needs the psql beside it."""
    if tool.major >= TRANSACTION_TIMEOUT_SINCE > server:
        psql = tool.path.with_name("psql")
        with psql_session(target_url, psql) as own:
            if own is None:
                raise BackupError(
                    f"{tool} into a PostgreSQL server older than {TRANSACTION_TIMEOUT_SINCE} "
                    f"needs psql from the same directory ({psql} is missing)"
                )
            return _restore_into(own, tool, path, server, progress, started)
    with child_connection(target_url) as conn:
        argv = [
            str(tool.path), *RESTORE_FLAGS, "--verbose", "--no-password",
            f"--dbname={conn.dbname_arg}", str(path),
        ]  # fmt: skip
        return _run(argv, conn, progress, "restoring", started)


def _restore_failure(
    path: Path, tool: Tool | str, outcome: _Outcome, target_url: str
) -> BackupError:
    return _failure(
        f"restore of {path} with {tool}",
        outcome,
        target_url,
        f"; {describe(target_url)} is unchanged",
    )


def _target_overview(rows: list[list[str]] | None) -> tuple[int, bool] | None:
    """The server's major version and whether it holds user tables, from psql's answer
    to the restore_target query; None if there is no answer or it is odd."""
    if rows is None or len(rows) != 1 or len(rows[0]) != 2:
        return None
    version, has_tables = rows[0]
    if not version.isdigit() or has_tables not in ("t", "f"):
        return None
    return int(version) // 10000, has_tables == "t"


def _one_build(psql: Path, pg_restore: Path) -> bool:
    """Whether ``psql`` and ``pg_restore`` lie in one directory once symlinks are
    followed: one installation, so one build (a folder of symlinks may mix
    versions)."""
    return psql.resolve().parent == pg_restore.resolve().parent


def status_question() -> str:
    """What migration_status() reads through psql: the session reset to UTC, then the
    migration records, in one round trip."""
    reset = queries.load("backup").fresh_session_in_utc.sql
    return f"{reset}\n{queries.load('migrations').applied_migrations.sql}"


def migration_status(
    url: str, files: list[MigrationFile], rows: list[list[str]] | None
) -> tuple[MigrationStatus, ...]:
    """The migration status of the database at ``url`` against ``files``: from psql's
    ``rows`` for status_question(), or through psycopg (Migrator.status) without them."""
    from trampolin.migration_files import compare

    records = None if rows is None else _migration_records(rows)
    if records is None:  # no psql, or no bookkeeping tables: psycopg's path knows every case
        from trampolin.migrations import Migrator

        return tuple(Migrator(url).status())
    return tuple(compare(files, records))


def _migration_records(rows: list[list[str]]) -> dict[str, dict[str, Any]] | None:
    """applied_migrations' rows as psql prints them (NULL as ''), as compare() takes
    them; None if they are not what that query returns."""
    records: dict[str, dict[str, Any]] = {}
    for row in rows:
        if len(row) != 3:
            return None
        migration_id, applied_at, checksum = row
        try:
            when = datetime.fromisoformat(applied_at) if applied_at else None
        except ValueError:
            return None
        records[migration_id] = {"applied_at": when, "checksum": checksum or None}
    return records


def _migration_files() -> list[MigrationFile]:
    from trampolin.migration_files import read_migration_files

    return read_migration_files()


class _Background(Generic[T]):
    """``work()`` run in a daemon thread; result() joins it and returns or raises.

    ``start=False``: started later by start(), or run in place by result().
    """

    def __init__(self, work: Callable[[], T], *, start: bool = True) -> None:
        self._work = work
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        if self._thread.ident is None:
            self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:  # re-raised by result()
            self._error = exc

    def join(self) -> None:
        """Wait for the work to end, whatever its outcome."""
        if self._thread.ident is not None:
            self._thread.join()

    def result(self) -> T:
        if self._thread.ident is None:
            self._run()
        else:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return cast(T, self._value)


def _copy_without_timeout(source: IO[bytes], sink: IO[bytes], preamble: int = 64) -> None:
    """Copy the script, dropping the transaction_timeout SET if it is in the first lines."""
    for _ in range(preamble):
        line = source.readline()
        if not line:
            return
        if line == TRANSACTION_TIMEOUT_LINE:
            break
        sink.write(line)
    import shutil

    shutil.copyfileobj(source, sink, 1 << 20)


# -- verify -------------------------------------------------------------------


class VerifyResult(NamedTuple):
    archive: Path
    size: int
    listing: Listing
    scratch: str
    seconds: float
    tables: tuple[TableRows, ...]
    migrations: tuple[MigrationStatus, ...]


def verify(
    archive: Path | str,
    server_url: str,
    *,
    progress: Progress = _quiet,
) -> VerifyResult:
    """Restore ``archive`` into a scratch database on ``server_url``'s server and check it.

    Checks the listing, the migration records, that every table the recorded
    migrations create is there, and counts every table's rows. The scratch
    databases are dropped; any failure raises BackupError.
    """
    import secrets

    from psycopg.conninfo import make_conninfo

    from trampolin.db import create_database

    path = check_archive(archive)
    listing = list_archive(path)
    started = time.monotonic()
    token = f"trampolin_verify_{os.getpid()}_{secrets.token_hex(3)}"
    scratch_url = make_conninfo(server_url, dbname=token)
    reference_url = make_conninfo(server_url, dbname=f"{token}_ref")
    problems: list[str] = []
    created: list[str] = []
    try:
        for name in (token, f"{token}_ref"):
            try:
                create_database(server_url, name)
            except TrampolinError:
                raise
            except Exception as exc:
                raise BackupError(
                    hide(
                        f"cannot create the scratch database {name}: {exc}", server_url
                    ).splitlines()[0]
                    + " (use --embedded to verify on the local embedded server)"
                ) from None
            created.append(name)
        progress(f"restoring into scratch database {describe(scratch_url)}")
        restored = restore(path, scratch_url, progress=progress)
        missing_data = sorted(set(listing.tables) - set(listing.table_data))
        if missing_data:
            problems.append(f"the archive has no data for {', '.join(missing_data)}")
        tables = sorted(user_tables(scratch_url, exact=True), key=lambda t: t.qualified)
        counts = {table.qualified: table.rows for table in tables}
        for record in MIGRATION_TABLES:
            # In whatever schema the database keeps them (Prisma's ?schema=, search_path).
            rows = [n for name, n in counts.items() if name.rpartition(".")[2] == record]
            if not rows:
                problems.append(f"the migration records ({record}) are missing")
            elif max(rows) == 0:
                problems.append(f"the migration records ({record}) are empty")
        if not problems:
            problems.extend(_missing_tables(restored.migrations, reference_url, set(counts)))
        migrations = restored.migrations
    finally:
        _drop(server_url, created)
    if problems:
        raise BackupError(f"verify of {path} failed: " + "; ".join(problems))
    return VerifyResult(
        path,
        path.stat().st_size,
        listing,
        describe(scratch_url),
        time.monotonic() - started,
        tuple(tables),
        migrations,
    )


def _missing_tables(
    statuses: Sequence[MigrationStatus], reference_url: str, present: set[str]
) -> list[str]:
    """Tables that the archive's applied migrations create but the restore lacks.

    The reference is an empty database with exactly those migrations applied.
    """
    import shutil
    import tempfile

    from trampolin.migrations import Migrator

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
    expected = {table.qualified for table in user_tables(reference_url)}
    missing = sorted(expected - present)
    if missing:
        return [f"table(s) {', '.join(missing)} missing from the restored database"]
    return []


def _drop(server_url: str, names: list[str]) -> None:
    from trampolin.db import connect

    if not names:
        return
    drop = queries.load("admin").drop_database
    with connect(server_url, autocommit=True) as conn:
        for name in names:
            drop.exec(conn, identifiers={"database": name})
