"""How a client program (pg_dump, psql) reaches a database without a password on disk.

The connection parameters go in ``--dbname`` as a conninfo string, the password
in the child's environment alone (``PGPASSWORD``), so that nothing holding it
is written anywhere or outlives the child, even when trampolin is killed.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from trampolin.errors import BackupError

# A secret that no environment variable carries: refused rather than put in argv.
_UNPASSABLE = "sslpassword"


@dataclass(frozen=True)
class ChildConnection:
    """A child's environment and its ``--dbname`` value, which holds no password."""

    env: dict[str, str]
    dbname: str


def child_connection(url: str) -> ChildConnection:
    """How a client program connects to ``url``."""
    params = {key: str(value) for key, value in conninfo_to_dict(url).items()}
    if _UNPASSABLE in params:
        raise BackupError(
            f"cannot pass {_UNPASSABLE} to pg_dump/pg_restore safely; "
            "use an unencrypted key file or a service file"
        )
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return ChildConnection(env, make_conninfo(**params) if params else "")


def describe(url: str) -> str:
    """``dbname on host:port``: where a URL points, without credentials."""
    params = conninfo_to_dict(url)
    host = params.get("host") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or "?"
    return f"{dbname} on {host}:{port}"


def sweep_password_files() -> list[Path]:
    """Remove the password files (``trampolin-*.pgpass``, ours by owner) that earlier
    trampolin releases wrote to the temporary directory and left there when killed;
    returns those removed. Nothing writes them any more."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob("trampolin-*.pgpass"):
        with suppress(OSError):
            if path.is_file() and path.stat().st_uid == os.getuid():
                path.unlink()
                removed.append(path)
    return removed
