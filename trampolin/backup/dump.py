"""``trampolin dump``: pg_dump -F c -b of a database into a file that appears whole or not at all.

pg_dump writes to ``.FILE.<pid>.partial`` beside FILE, renamed to FILE when it
succeeds and removed when it fails or is stopped. A partial left by a process
that was killed (kill -9 runs no cleanup) is removed by the next dump to FILE.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from trampolin.backup.connection import child_connection, sweep_password_files
from trampolin.backup.running import Progress, Stderr, failure_detail, wait_all
from trampolin.backup.tables import server_major, table_sizes
from trampolin.backup.tools import Tool, choose_tool, find_tools
from trampolin.db import connect
from trampolin.errors import BackupError

FLAGS = ("--format=custom", "-b")  # -b: large objects (--blobs before 16)
_TABLE = re.compile(r'pg_dump: dumping contents of table "(.+)"')


@dataclass(frozen=True)
class DumpResult:
    path: Path
    size: int
    seconds: float
    tables: int
    tool: str


def dump(
    url: str,
    out_path: Path | str,
    *,
    progress: Progress | None = None,
    extra_args: Sequence[str] = (),
) -> DumpResult:
    """Dump ``url`` to ``out_path`` with the first pg_dump as new as its server.

    ``progress`` hears of the bytes dumped, by table sizes from the catalog;
    ``extra_args`` go to pg_dump as they are (tests use --exclude-table).
    """
    out = Path(out_path)
    if out.is_dir():
        raise BackupError(f"{out} is a directory; give a file name, e.g. {out / 'backup.dump'}")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent}: no such directory")
    sweep_password_files()
    sweep_partials(out)
    started = time.monotonic()
    with connect(url, autocommit=True) as conn:
        major = server_major(conn)
        sizes = table_sizes(conn) if progress is not None else {}
    tool = choose_tool("pg_dump", find_tools("pg_dump"), major)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        # Readable by its owner only: a dump holds every user's data and OAuth tokens.
        os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
        tables = _run_pg_dump(tool, url, partial, extra_args, progress, sizes)
        partial.replace(out)
    except BackupError as exc:
        raise BackupError(f"{exc}; {out} was not written") from None
    finally:
        with suppress(FileNotFoundError):
            partial.unlink()
    return DumpResult(out, out.stat().st_size, time.monotonic() - started, tables, str(tool))


def _run_pg_dump(
    tool: Tool,
    url: str,
    partial: Path,
    extra_args: Sequence[str],
    progress: Progress | None,
    sizes: dict[str, int],
) -> int:
    """Run pg_dump into ``partial``; the number of tables whose data it dumped."""
    child = child_connection(url)
    argv = [
        str(tool.path), *FLAGS, "--verbose", "--no-password", f"--file={partial}",
        *extra_args, f"--dbname={child.dbname}",
    ]  # fmt: skip
    with Stderr() as stderr:
        tables = _Tables(stderr, progress, sizes)
        with subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr.fileno(),
            env=child.env,
        ) as pg_dump:  # fmt: skip
            wait_all([pg_dump], tables.read if progress is not None else None)
        tables.read()
        if pg_dump.returncode != 0:
            detail = failure_detail(stderr.errors(), pg_dump.returncode)
            raise BackupError(f"{tool} failed: {detail}")
    if progress is not None:
        progress(tables.total, tables.total, "")
    return len(tables.names)


class _Tables:
    """The tables that pg_dump says it dumps (--verbose), and the progress they make by
    their size in the catalog: a table counts as done once pg_dump is at the next."""

    def __init__(self, stderr: Stderr, progress: Progress | None, sizes: dict[str, int]) -> None:
        self.stderr = stderr
        self.progress = progress
        self.sizes = sizes
        self.total = sum(sizes.values())
        self.names: list[str] = []

    def read(self) -> None:
        for line in self.stderr.new_lines():
            if match := _TABLE.search(line):
                self.names.append(match[1])
        if self.progress is not None and self.names:
            done = sum(self.sizes.get(name, 0) for name in self.names[:-1])
            self.progress(done, self.total, self.names[-1])


def sweep_partials(out: Path) -> list[Path]:
    """Remove the partial files of dumps to ``out`` whose process no longer runs (or
    is this one, which has not made its own yet); returns those removed."""
    removed = []
    for path in out.parent.glob(f".{glob.escape(out.name)}.*.partial"):
        pid = path.name[len(out.name) + 2 : -len(".partial")]
        if pid.isdigit() and (int(pid) == os.getpid() or not _running(int(pid))):
            with suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
