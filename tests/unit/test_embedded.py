"""Where the embedded cluster lives: found from any directory of a project (no server needed)."""

from pathlib import Path

import pytest

from trampolin.embedded import data_dir, project_root


@pytest.fixture
def no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAMPOLIN_EMBEDDED_DIR", raising=False)


@pytest.mark.usefixtures("no_override")
@pytest.mark.parametrize("marker", ["pyproject.toml", ".git"])
def test_every_directory_of_a_project_shares_one_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: str
) -> None:
    project = tmp_path / "app"
    deep = project / "deploy" / "scripts"
    deep.mkdir(parents=True)
    (project / marker).touch()
    for where in (project, project / "deploy", deep):
        monkeypatch.chdir(where)
        assert project_root() == project.resolve()
        assert data_dir() == project.resolve() / ".trampolin" / "pgdata"


@pytest.mark.usefixtures("no_override")
def test_the_nearest_project_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    inner = tmp_path / "services" / "api"
    inner.mkdir(parents=True)
    (inner / "pyproject.toml").touch()
    monkeypatch.chdir(inner)
    assert project_root() == inner.resolve()


@pytest.mark.usefixtures("no_override")
def test_outside_any_project_the_cluster_is_per_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    monkeypatch.setattr("trampolin.embedded.project_root", lambda start=None: None)
    monkeypatch.chdir(nowhere)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert data_dir() == (tmp_path / "data" / "trampolin" / "pgdata").resolve()
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == (tmp_path / "home" / ".local" / "share" / "trampolin" / "pgdata")


def test_the_environment_overrides_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").touch()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAMPOLIN_EMBEDDED_DIR", str(tmp_path / "elsewhere"))
    assert data_dir() == (tmp_path / "elsewhere" / "pgdata").resolve()
