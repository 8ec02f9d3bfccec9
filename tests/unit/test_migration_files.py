"""Migration files as yoyo lists, orders and reads them; checksums, statuses, new files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from yoyo.migrations import read_migrations

from tests.migration_support import Write, migrations_dir_in, writer
from trampolin.errors import InvalidInput, MigrationError
from trampolin.migration_files import (
    compare,
    migrations_dir,
    new_migration,
    read_migration_files,
)


@pytest.fixture
def mdir(tmp_path: Path) -> Path:
    return migrations_dir_in(tmp_path)


@pytest.fixture
def write(mdir: Path) -> Write:
    return writer(mdir)


def test_depends_directives_order_the_files(mdir: Path, write: Write) -> None:
    write("0001_b.sql", "-- depends: 0002_a\n-- B after A.\nSELECT 1;\n")
    write("0002_a.sql", "-- A.\nSELECT 1;\n")
    assert [m.id for m in read_migration_files(mdir)] == ["0002_a", "0001_b"]


def test_files_are_listed_as_yoyo_lists_them(mdir: Path, write: Write) -> None:
    write("0002_b.sql", "-- Second.\r\n-- transactional: false\r\n\r\nCREATE INDEX i ON t (c);")
    write("0001_a.sql", "-- First.\nCREATE TABLE t (c int);")
    write("0001_a.rollback.sql", "DROP TABLE t;")
    write("0010_c.sql", "SELECT 1;")
    write("post-apply.sql", "SELECT 1;")
    write("_tmp_yoyonew_x.sql", "SELECT 1;")
    write("README.md", "not a migration")
    write("..sql", "SELECT 1;")  # an odd name: yoyo's id keeps it whole
    (mdir / "folder.sql").mkdir()
    for directory in (migrations_dir(), mdir):
        ours = [migration.id for migration in read_migration_files(directory)]
        assert ours == [migration.id for migration in read_migrations(str(directory))]
    assert [m.id for m in read_migration_files(mdir)] == ["..sql", "0001_a", "0002_b", "0010_c"]


def test_only_sql_migrations(mdir: Path, write: Write) -> None:
    write("0001_a.py", "steps = []\n")
    with pytest.raises(MigrationError, match=r"0001_a.py: only .sql migrations"):
        read_migration_files(mdir)
    with pytest.raises(MigrationError, match="no migrations directory"):
        read_migration_files(mdir / "missing")


def test_depends_in_a_directory_whose_name_holds_glob_characters(tmp_path: Path) -> None:
    """yoyo globs the directory it is given: a sibling must not stand in for it."""
    odd, sibling = tmp_path / "m[1]", tmp_path / "m1"
    odd.mkdir()
    sibling.mkdir()
    (sibling / "0009_other.sql").write_text("SELECT 1;\n", encoding="utf-8")
    (odd / "0001_b.sql").write_text("-- depends: 0002_a\nSELECT 1;\n", encoding="utf-8")
    (odd / "0002_a.sql").write_text("SELECT 1;\n", encoding="utf-8")
    assert [m.id for m in read_migration_files(odd)] == ["0002_a", "0001_b"]


LEADING_COMMENTS = [
    ("-- Add users.\n--\n-- More about it.\n\nCREATE TABLE users ();", "Add users.", True, ""),
    ("-- transactional: false\n-- Build an index.\nCREATE INDEX CONCURRENTLY i ON t (c);",
     "Build an index.", False, ""),
    ("-- Windows.\r\n-- depends: 0001_a\r\n\r\nSELECT 1;", "Windows.", True, "0001_a"),
    ("-- Old Mac.\r-- depends: 0001_a 0002_b\rSELECT 1;", "Old Mac.", True, "0001_a 0002_b"),
    ("  -- indented\n\t-- tab\n   --    depends :   0001_a   \n-- depends: 0002_b\nSELECT 1;",
     "indented tab", True, "0001_a 0002_b"),
    ("---- dashes ----\n--no space\n--\n--   deeper\nSELECT 1;", "dashes ---- no space", True, ""),
    ("SELECT 1; -- no leading comment\n-- transactional: false", "", True, ""),
    ("-- Ünïcödé and a -- within\n-- transactional: TRUE\nSELECT 1;",
     "Ünïcödé and a -- within", True, ""),
]  # fmt: skip


@pytest.mark.parametrize(("text", "description", "transactional", "depends"), LEADING_COMMENTS)
def test_leading_comments(
    mdir: Path, write: Write, text: str, description: str, transactional: bool, depends: str
) -> None:
    for other in depends.split():
        write(f"{other}.sql", "SELECT 1;")
    write("0009_x.sql", text)
    read = {m.id: m for m in read_migration_files(mdir)}["0009_x"]
    assert read.description == description
    assert read.transactional is transactional
    assert read.depends == frozenset(depends.split())


def test_the_real_files_have_descriptions_and_checksums() -> None:
    files = read_migration_files()
    assert files[0].id == "0001_roles_and_users"
    assert all(migration.description for migration in files)
    assert len({migration.checksum for migration in files}) == len(files)


@pytest.mark.parametrize("text", ["-- transactional: maybe\nSELECT 1;", "SELECT '\xff';"])
def test_unreadable_files_are_refused(mdir: Path, text: str) -> None:
    (mdir / "0001_x.sql").write_bytes(text.encode("latin-1"))
    with pytest.raises(MigrationError, match=r"0001_x.sql: (not UTF-8|'-- transactional:')"):
        read_migration_files(mdir)


def test_scripts_are_split_with_their_lines(mdir: Path, write: Write) -> None:
    write("0001_a.sql", "-- A.\nCREATE TABLE a (id int);\n\nINSERT INTO\n  a VALUES (1);\n")
    write("0001_a.rollback.sql", "-- transactional: false\nDROP TABLE a;\n")
    migration = read_migration_files(mdir)[0]
    script = migration.script()
    assert [(s.line, s.sql.split()[0]) for s in script.statements] == [(2, "CREATE"), (4, "INSERT")]
    rollback = migration.rollback_script()
    assert rollback is not None
    assert rollback.transactional is False
    write("0002_b.sql", "-- B.\nSELECT 1;\nCOMMIT;\n")
    with pytest.raises(MigrationError, match=r"0002_b.sql:3: no BEGIN, COMMIT or ROLLBACK"):
        read_migration_files(mdir)[1].script()
    assert read_migration_files(mdir)[1].rollback_script() is None


def test_compare_names_every_state() -> None:
    files = read_migration_files()
    ny = timezone(timedelta(hours=-5))
    when = datetime(2025, 1, 1, 7, tzinfo=ny)
    applied: dict[str, dict[str, Any]] = {
        files[0].id: {"applied_at": when, "checksum": files[0].checksum},
        files[1].id: {"applied_at": when, "checksum": "0" * 64},
        files[2].id: {"applied_at": None, "checksum": None},  # applied by plain yoyo
        "9999_from_the_future": {"applied_at": when, "checksum": None},
    }
    statuses = compare(files, applied)
    assert [s.state for s in statuses[:4]] == ["applied", "edited", "applied", "pending"]
    assert statuses[-1].state == "missing"
    assert statuses[-1].path is None
    assert statuses[0].applied_at == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert statuses[2].applied_at is None


def test_new_migration_writes_the_next_number(mdir: Path, write: Write) -> None:
    write("0007_old.sql", "-- Old.\nSELECT 1;\n")
    forward, rollback = new_migration("add_invoices", mdir)
    assert forward.name == "0008_add_invoices.sql"
    assert rollback.name == "0008_add_invoices.rollback.sql"
    described = [m for m in read_migration_files(mdir) if m.id == "0008_add_invoices"]
    assert described[0].description == "Add invoices."
    with pytest.raises(InvalidInput, match="exists already"):
        new_migration("add_invoices", mdir)
    assert new_migration("invoices", mdir)[0].name == "0009_invoices.sql"  # not a clash


@pytest.mark.parametrize("bad", ["", "Add", "1abc", "has space", "a-b", "x" * 61, "../up"])
def test_new_migration_rejects_bad_names(mdir: Path, bad: str) -> None:
    with pytest.raises(InvalidInput, match="lower snake_case"):
        new_migration(bad, mdir)
