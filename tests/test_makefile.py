"""`make test`'s pooled phase: one line when PgBouncer is not installed."""

import shutil
import subprocess

import pytest

from tests.support import ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_pooled_phase_without_pgbouncer_is_one_line() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "test-pooled", "PGBOUNCER="],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("pooled phase skipped: pgbouncer is not installed")
    assert "apt-get install pgbouncer" in line
    assert result.stderr == ""
