"""The CLI as a process: output into a closed pipe, waiting for a late database, and the
embedded cluster found from any directory of a project."""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from tests.cli_support import LateServer
from tests.support import ROOT, TestServer, run_cli
from trampolin.cli import EXIT_BROKEN_PIPE
from trampolin.csv_uploads import CsvUploads


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trampolin", *args]


def test_output_into_a_closed_pipe_stops_quietly() -> None:
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first line is written
    try:
        result = subprocess.run(
            _cli("db", "url", "--database-url", "postgresql://u:pw@h/app"),
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            check=False,
        )
    finally:
        os.close(writer)
    assert result.stderr == ""
    assert result.returncode == EXIT_BROKEN_PIPE  # 141, as a shell shows SIGPIPE


def test_csv_export_into_head_stops_quietly(
    db_url: str, conn: psycopg.Connection[Any], make_user: Callable[..., UUID], tmp_path: Path
) -> None:
    source = tmp_path / "big.csv"
    with source.open("w") as out:  # far more than a pipe holds
        out.write("name,note\n")
        out.writelines(f"row {i},{'x' * 100}\n" for i in range(20_000))
    upload = CsvUploads(conn).import_csv(user_id=make_user(), source=source)
    head = subprocess.run(
        [
            "bash",
            "-c",
            f'"$0" -m trampolin csv export {upload.id} -o - 2>"$1" | head -1; '
            'echo "${PIPESTATUS[0]}" >"$2"',
            sys.executable,
            str(tmp_path / "stderr"),
            str(tmp_path / "status"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        check=True,
    )
    assert head.stdout == "name,note\n"
    assert (tmp_path / "stderr").read_text() == ""
    assert int((tmp_path / "status").read_text()) == EXIT_BROKEN_PIPE


@pytest.fixture
def late_server(server: TestServer) -> Iterator[LateServer]:
    late = LateServer(server, delay=1.5)
    yield late
    late.close()


def test_db_wait_waits_for_a_late_database(late_server: LateServer, db_name: str) -> None:
    url = late_server.url(db_name)
    result = run_cli("db", "wait", "--timeout", "60", env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ready: {url}")
    assert f"waiting up to 60s for {url}: " in result.stderr


def test_migrate_wait_then_migrates(late_server: LateServer, empty_db_name: str) -> None:
    url = late_server.url(empty_db_name)
    result = run_cli("migrate", "--wait", "60", env={"DATABASE_URL": url, "DIRECT_URL": ""})
    assert result.returncode == 0, result.stderr
    assert "waiting up to 60s for" in result.stderr
    assert "applied 0001_roles_and_users" in result.stdout


def test_waiting_gives_up_with_one_error_line() -> None:
    env = {"DATABASE_URL": "postgresql://u:s3cr3t@127.0.0.1:1/app", "DIRECT_URL": ""}
    for args in (["db", "wait", "--timeout", "1"], ["migrate", "--wait", "1"]):
        result = run_cli(*args, env=env)
        assert result.returncode == 2
        waiting, error = result.stderr.splitlines()
        assert waiting.startswith("waiting up to 1s for postgresql://u:***@127.0.0.1:1/app: ")
        assert error.startswith("error: gave up waiting after 1s: cannot connect to ")
        assert "s3cr3t" not in result.stderr + result.stdout


def test_a_reachable_database_is_not_waited_for(db_url: str) -> None:
    result = run_cli("db", "wait", env={"DATABASE_URL": db_url})
    assert result.returncode == 0
    assert result.stderr == ""


@pytest.mark.slow
def test_the_embedded_cluster_follows_the_project_from_any_directory() -> None:
    # Not under pytest's tmp_path: the embedded server runs as its own user when we are
    # root and must reach the directory, and pytest-of-<user> is private (and is
    # tidied by any other pytest session running at the same time).
    top = Path(tempfile.mkdtemp(prefix="trampolin-project-"))
    top.chmod(0o755)
    project = top / "app"
    deep = project / "deploy" / "scripts"
    deep.mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    data = project / ".trampolin" / "pgdata"
    env = {"DATABASE_URL": "", "DIRECT_URL": "", "TRAMPOLIN_EMBEDDED_DIR": ""}
    try:
        migrated = run_cli("migrate", env=env, cwd=deep, timeout=300)
        assert migrated.returncode == 0, migrated.stderr
        assert f"using the embedded local PostgreSQL in {data.resolve()} (" in migrated.stderr
        assert "applied 0001_roles_and_users" in migrated.stdout
        for where in (project, project / "deploy"):
            status = run_cli("migrate", "status", env=env, cwd=where)
            assert status.returncode == 0, status.stdout + status.stderr  # nothing pending
            assert str(data.resolve()) in status.stderr
        assert not (deep / ".trampolin").exists()
    finally:
        run_cli("db", "stop-embedded", env=env, cwd=project)
        shutil.rmtree(top, ignore_errors=True)
