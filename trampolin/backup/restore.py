"""``trampolin restore``: an archive into a database in one transaction, all or nothing.

``pg_restore --single-transaction --file=-`` writes the archive as one script
(BEGIN first, COMMIT last, large objects in between, written only once the
whole archive was read) into the psql of its own installation, which runs it
with ON_ERROR_STOP: the first error ends psql and the server rolls back.

Not ``pg_restore --dbname``, which would be simpler: pg_restore 17 and newer
write ``SET transaction_timeout = 0``, which servers before 17 reject, and
into such a server that line must be taken out of the script (_copy_script).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from trampolin.backup.archive import check_archive, list_archive
from trampolin.backup.connection import child_connection, describe, sweep_password_files
from trampolin.backup.running import Progress, Stderr, failure_detail, stop, wait_all
from trampolin.backup.tables import TableRows, refusal, server_major, user_tables
from trampolin.backup.tools import Tool, psql_beside
from trampolin.db import connect
from trampolin.errors import BackupError
from trampolin.migration_files import MigrationStatus
from trampolin.migrations import Migrator

# --exit-on-error counts in --dbname mode only (the raw side of bench/backup.py);
# into psql, ON_ERROR_STOP does its job.
FLAGS = (
    "--clean",
    "--if-exists",
    "--no-acl",
    "--no-owner",
    "--single-transaction",
    "--exit-on-error",
)
# The one line of pg_restore 17+ that servers before 17 reject, among its first lines.
TRANSACTION_TIMEOUT_LINE = b"SET transaction_timeout = 0;\n"
TRANSACTION_TIMEOUT_SINCE = 17


@dataclass(frozen=True)
class RestoreResult:
    archive: Path
    target: str
    seconds: float
    tables: int
    replaced: tuple[TableRows, ...]
    migrations: tuple[MigrationStatus, ...]
    tool: str


def restore(
    archive: Path | str,
    target_url: str,
    *,
    yes: bool = False,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore ``archive`` into ``target_url`` in one transaction, then read its
    migration status. Refuses a target that holds tables unless ``yes``; on any
    failure the target is unchanged. ``progress`` hears how far pg_restore has read."""
    sweep_password_files()
    path = check_archive(archive)
    with connect(target_url, autocommit=True) as conn:
        major = server_major(conn)
        present = user_tables(conn)
    listing = list_archive(path, min_major=major)
    where = describe(target_url)
    if present and not yes:
        raise refusal(where, present, listing.tables)
    replaced = tuple(table for table in present if table.qualified in set(listing.tables))
    started = time.monotonic()
    errors = _run_script(listing.tool, path, target_url, major, progress)
    if errors is not None:
        raise BackupError(
            f"restore of {path} with {listing.tool} failed: {errors}; {where} is unchanged"
        )
    seconds = time.monotonic() - started
    migrations = tuple(Migrator(target_url).status())
    return RestoreResult(
        path, where, seconds, len(listing.table_data), replaced, migrations, str(listing.tool)
    )


def _run_script(
    tool: Tool, archive: Path, target_url: str, server: int, progress: Progress | None
) -> str | None:
    """pg_restore's script for ``archive`` run by psql on ``target_url``; what went
    wrong, or None if it committed."""
    psql = psql_beside(tool)
    child = child_connection(target_url)
    filtered = tool.major >= TRANSACTION_TIMEOUT_SINCE > server
    run_script = [
        str(psql), "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
        f"--dbname={child.dbname}",
    ]  # fmt: skip
    with (
        archive.open("rb") as data,
        Stderr() as restore_errors,
        Stderr() as psql_errors,
        subprocess.Popen(
            [str(tool.path), *FLAGS, "--file=-"],
            stdin=data,  # not a path: pg_restore's offset in this file is ours (_reading)
            stdout=subprocess.PIPE,
            stderr=restore_errors.fileno(),
        ) as pg_restore,
    ):
        assert pg_restore.stdout is not None
        tick = None if progress is None else _reading(data, progress)
        try:
            runner = subprocess.Popen(
                run_script,
                stdin=subprocess.PIPE if filtered else pg_restore.stdout,
                stdout=subprocess.DEVNULL,  # the rows of the script's SELECTs
                stderr=psql_errors.fileno(),
                env=child.env,
            )
        except BaseException:
            stop(pg_restore)
            raise
        with runner:
            if filtered:
                _copy_script(pg_restore, runner, tick)
            else:  # psql's alone: pg_restore must see a broken pipe if psql ends early
                pg_restore.stdout.close()
            wait_all([pg_restore, runner], tick)
        if tick is not None:
            tick()
        if runner.returncode != 0:  # its error is the cause (pg_restore's a broken pipe)
            return failure_detail(psql_errors.errors(), runner.returncode)
        if pg_restore.returncode != 0:  # its script ended before the COMMIT: rolled back
            return failure_detail(restore_errors.errors(), pg_restore.returncode)
    return None


def _reading(data: IO[bytes], progress: Progress) -> Callable[[], None]:
    """A tick that reports how far pg_restore has read ``data``, its stdin."""
    size = os.fstat(data.fileno()).st_size
    return lambda: progress(os.lseek(data.fileno(), 0, os.SEEK_CUR), size, "")


def _copy_script(
    pg_restore: subprocess.Popen[bytes],
    psql: subprocess.Popen[bytes],
    tick: Callable[[], None] | None,
) -> None:
    """Copy pg_restore's script into psql without the transaction_timeout line, up to
    the end of the script or of psql (its errors say why); on Ctrl-C or SIGTERM, both
    are stopped."""
    assert pg_restore.stdout is not None
    assert psql.stdin is not None
    try:
        with pg_restore.stdout as script:  # closed: pg_restore sees a broken pipe
            copy_without_timeout(script, psql.stdin, tick)
    except BrokenPipeError:
        pass
    except BaseException:
        stop(pg_restore)
        stop(psql)
        raise
    finally:
        with suppress(BrokenPipeError):
            psql.stdin.close()  # the end of the script for psql


def copy_without_timeout(
    source: IO[bytes], sink: IO[bytes], tick: Callable[[], None] | None = None
) -> None:
    """Copy a script, without the transaction_timeout SET if it is among the first lines."""
    for _ in range(64):
        line = source.readline()
        if not line:
            return
        if line == TRANSACTION_TIMEOUT_LINE:
            break
        sink.write(line)
    while chunk := source.read(1 << 20):
        sink.write(chunk)
        if tick is not None:
            tick()
