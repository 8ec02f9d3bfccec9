"""What a pg_dump custom-format archive holds: its header checked, its table of
contents listed by the first pg_restore that can read it."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from trampolin.backup.tools import Tool, choose_tool, find_tools
from trampolin.errors import BackupError

MAGIC = b"PGDMP"
_ENTRY = re.compile(r"^\d+; \d+ \d+ (?P<type>TABLE DATA|TABLE) (?P<schema>\S+) (?P<name>\S+) ")


@dataclass(frozen=True)
class Listing:
    """What ``pg_restore --list`` says about an archive, and the pg_restore that said it."""

    entries: int
    tables: tuple[str, ...]
    table_data: tuple[str, ...]
    dumped_by: str
    dumped_from: str
    tool: Tool


def check_archive(archive: Path | str) -> Path:
    """``archive`` as a Path; BackupError if it is not a custom-format pg_dump archive."""
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
    """The archive's table of contents, read by the first pg_restore of at least
    ``min_major`` (the target server's major version) that can read it."""
    path = check_archive(archive)
    too_old: list[Tool] = []
    unread = ""
    for tool in find_tools("pg_restore"):
        if tool.major < min_major:
            too_old.append(tool)
            continue
        listed = subprocess.run(
            [str(tool.path), "--list", str(path)],
            capture_output=True,
            encoding="utf-8",
            errors="replace",  # names in a LATIN1 or SQL_ASCII database's archive
            check=False,
        )
        if listed.returncode == 0:
            return parse_listing(listed.stdout, tool)
        lines = listed.stderr.strip().splitlines()
        error = lines[-1].removeprefix("pg_restore: error: ") if lines else "no message"
        if "unsupported version" not in error:
            raise BackupError(
                f"{path}: {tool} cannot read it: {error} (the archive is truncated or corrupt)"
            )
        unread = f"{tool} cannot read it ({error})"  # a newer pg_restore may
    if unread:
        raise BackupError(
            f"{path} was made by a newer pg_dump: {unread}; install newer PostgreSQL "
            "client tools or set TRAMPOLIN_PG_BIN"
        )
    if min_major:
        choose_tool("pg_restore", too_old, min_major)  # none fits: raises, naming the version
    raise BackupError(
        "no pg_restore found: install the PostgreSQL client tools, set TRAMPOLIN_PG_BIN, "
        "or pip install 'trampolin[embedded]'"
    )


def parse_listing(text: str, tool: Tool) -> Listing:
    """The Listing that ``text``, the output of ``tool --list``, describes."""
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
        match = _ENTRY.match(line)
        if match:
            name = f"{match['schema']}.{match['name']}"
            (data if match["type"] == "TABLE DATA" else tables).append(name)
    return Listing(entries, tuple(tables), tuple(data), dumped_by, dumped_from, tool)
