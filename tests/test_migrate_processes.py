"""`trampolin migrate` as deploys run it: several at once, and killed midway."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.support import ROOT
from trampolin import queries
from trampolin.migration_files import read_migration_files
from trampolin.migrations import Migrator

CHECKS = queries.load_file(Path(__file__).parent / "sql" / "checks.sql")


def start_migrate(url: str, *extra: str, migrations: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": url}
    if migrations:
        env["TRAMPOLIN_MIGRATIONS_DIR"] = str(migrations)
    return subprocess.Popen(
        [sys.executable, "-m", "trampolin", "migrate", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def applied_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = CHECKS.yoyo_log_count.one(conn, operation="apply")
        return int(row["n"]) if row else 0


def test_concurrent_migrates_apply_each_migration_exactly_once(empty_db_url: str) -> None:
    processes = [start_migrate(empty_db_url) for _ in range(4)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, outputs
    expected = len(read_migration_files())
    assert applied_count(empty_db_url) == expected
    applied_lines = sum(out.count("applied 0") for out, _ in outputs)
    assert applied_lines == expected


def wait_until(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_a_killed_migrate_leaves_no_lock_and_no_half_migration(
    empty_db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_a.sql").write_text("-- A.\nCREATE TABLE a (id int);\n")
    Migrator(empty_db_url, directory=tmp_path).apply()
    (tmp_path / "0002_b.sql").write_text(
        "-- B.\nCREATE TABLE b (id int);\nINSERT INTO a VALUES (1);\nLOCK TABLE a;\n"
    )
    with psycopg.connect(empty_db_url) as blocker:
        CHECKS.lock_table_a.exec(blocker)
        process = start_migrate(empty_db_url, "--lock-timeout", "10min", migrations=tmp_path)

        def migrator_waits() -> bool:
            with psycopg.connect(empty_db_url, autocommit=True) as probe:
                return bool(CHECKS.waiting_on_lock.one(probe, table="a"))

        wait_until(migrator_waits)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    # The lock holder is gone; a new deploy completes without manual steps.
    finished = start_migrate(empty_db_url, "--lock-wait", "60", migrations=tmp_path)
    out, err = finished.communicate(timeout=120)
    assert finished.returncode == 0, err
    assert "applied 0002_b" in out
    with psycopg.connect(empty_db_url) as conn:
        row = CHECKS.count_a.one(conn)
        assert row is not None
        assert row["n"] == 1  # the killed attempt's INSERT was rolled back
    assert applied_count(empty_db_url) == 2
