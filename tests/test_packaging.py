"""The built wheel carries sql/ and works from anywhere; the embedded default works."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.support import ROOT, run_cli


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return next(out.glob("trampolin-*.whl"))


def test_wheel_contains_migrations_queries_and_seed(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "trampolin/sql/seed.sql" in names
    assert "trampolin/sql/migrations/0001_roles_and_users.sql" in names
    assert "trampolin/sql/queries/migrations.sql" in names
    assert "trampolin/py.typed" in names


@pytest.mark.slow
def test_installed_wheel_migrates_and_seeds_from_another_directory(
    wheel: Path, tmp_path: Path, empty_db_url: str
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Install the wheel alone, then borrow its dependencies from the test environment
    # (a path entry, so the checkout's editable install is not visible).
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "DATABASE_URL": empty_db_url}
    env.pop("TRAMPOLIN_MIGRATIONS_DIR", None)
    where = subprocess.run(
        [python, "-c", "import trampolin.queries as q; print(q.sql_root())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(venv) in where.stdout
    for args in (["migrate"], ["seed"], ["migrate", "status"]):
        result = subprocess.run(
            [venv / "bin" / "trampolin", *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    assert "2 row(s) changed" not in result.stdout


@pytest.mark.slow
def test_embedded_default_when_no_url_is_set(tmp_path: Path) -> None:
    env = {"TRAMPOLIN_EMBEDDED_DIR": str(tmp_path / "state"), "DATABASE_URL": ""}
    try:
        migrated = run_cli("migrate", env=env, cwd=tmp_path, timeout=180)
        assert migrated.returncode == 0, migrated.stderr
        assert "using the embedded local PostgreSQL" in migrated.stderr
        assert "applied 0001_roles_and_users" in migrated.stdout
        again = run_cli("migrate", env=env, cwd=tmp_path)
        assert "nothing to apply" in again.stdout
        assert run_cli("seed", env=env, cwd=tmp_path).returncode == 0
    finally:
        run_cli("db", "stop-embedded", env=env, cwd=tmp_path)
