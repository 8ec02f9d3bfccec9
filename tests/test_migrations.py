"""The migrator on a real database: apply, status, drift, failure, rollback.

Reading the files (listing, order, leading comments, new files): tests/unit/test_migration_files.py.
"""

import shutil
from pathlib import Path

import psycopg
import pytest

from tests.migration_support import Write, migrations_dir_in, writer
from trampolin import queries
from trampolin.errors import InvalidInput, MigrationDrift, MigrationError
from trampolin.migration_files import migrations_dir, read_migration_files
from trampolin.migrations import Migrator

CHECKS = queries.load_file(Path(__file__).parent / "sql" / "checks.sql")


@pytest.fixture
def mdir(tmp_path: Path) -> Path:
    return migrations_dir_in(tmp_path)


@pytest.fixture
def write(mdir: Path) -> Write:
    return writer(mdir)


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row["name"] for row in CHECKS.table_names.many(conn)]


def log_count(url: str, operation: str) -> int:
    with psycopg.connect(url) as conn:
        row = CHECKS.yoyo_log_count.one(conn, operation=operation)
        return int(row["n"]) if row else 0


def test_the_real_migrations_apply_and_roll_back_cleanly(empty_db_url: str) -> None:
    migrator = Migrator(empty_db_url)
    applied = migrator.apply()
    assert [m.id for m in applied] == [m.id for m in read_migration_files()]
    assert {"users", "sessions", "subscriptions", "csv_rows"} <= set(tables(empty_db_url))
    assert migrator.apply() == []
    assert {s.state for s in migrator.status()} == {"applied"}
    migrator.rollback(count=len(applied))
    assert all(name.startswith("_") for name in tables(empty_db_url))
    assert {s.state for s in migrator.status()} == {"pending"}
    assert migrator.apply()  # and forward again


def test_status_lists_descriptions_from_the_leading_comment(empty_db_url: str) -> None:
    statuses = Migrator(empty_db_url).status()
    assert statuses[0].id == "0001_roles_and_users"
    assert statuses[0].description.startswith("Roles and users")
    assert statuses[0].state == "pending"


def test_a_failing_migration_names_the_file_and_line_and_changes_nothing(
    empty_db_url: str, mdir: Path, write: Write
) -> None:
    write("0001_ok.sql", "-- Fine.\nCREATE TABLE first (id int);\n")
    write(
        "0002_bad.sql",
        "-- Broken.\nCREATE TABLE second (id int);\n\nINSERT INTO\n  missing_table VALUES (1);\n",
    )
    migrator = Migrator(empty_db_url, directory=mdir)
    with pytest.raises(MigrationError) as caught:
        migrator.apply()
    message = str(caught.value)
    assert "0002_bad.sql:5" in message
    assert 'relation "missing_table" does not exist' in message
    assert "as it was before this migration" in message
    assert "first" in tables(empty_db_url)
    assert "second" not in tables(empty_db_url)
    assert [s.state for s in migrator.status()] == ["applied", "pending"]


def test_edited_or_deleted_applied_files_are_refused(
    empty_db_url: str, mdir: Path, write: Write
) -> None:
    first = write("0001_a.sql", "-- A.\nCREATE TABLE a (id int);\n")
    write("0002_b.sql", "-- B.\nCREATE TABLE b (id int);\n")
    migrator = Migrator(empty_db_url, directory=mdir)
    migrator.apply()
    first.write_text("-- A.\nCREATE TABLE a (id bigint);\n", encoding="utf-8")
    write("0003_c.sql", "-- C.\nCREATE TABLE c (id int);\n")
    with pytest.raises(MigrationDrift, match=r"0001_a.sql was edited .* new migration"):
        migrator.apply()
    assert "c" not in tables(empty_db_url)
    assert [s.state for s in migrator.status()] == ["edited", "applied", "pending"]

    first.write_text("-- A.\nCREATE TABLE a (id int);\n", encoding="utf-8")
    (mdir / "0002_b.sql").unlink()
    with pytest.raises(MigrationDrift, match="0002_b has no file"):
        migrator.apply()
    assert [s.state for s in migrator.status()][-1] == "missing"


def test_lock_timeout_fails_fast_instead_of_queueing(
    empty_db_url: str, mdir: Path, write: Write
) -> None:
    write("0001_t.sql", "-- T.\nCREATE TABLE t (id int);\n")
    Migrator(empty_db_url, directory=mdir).apply()
    write("0002_alter.sql", "-- Alter.\nALTER TABLE t ADD COLUMN name text;\n")
    with psycopg.connect(empty_db_url) as blocker:
        CHECKS.lock_table_t.exec(blocker)  # holds ACCESS SHARE, like a long report query
        migrator = Migrator(empty_db_url, directory=mdir, lock_timeout="200ms")
        with pytest.raises(MigrationError, match=r"0002_alter.sql:\d+: .*lock_timeout"):
            migrator.apply()
    assert [s.state for s in migrator.status()] == ["applied", "pending"]
    migrator.apply()


def test_non_transactional_migration_for_create_index_concurrently(
    empty_db_url: str, mdir: Path, write: Write
) -> None:
    write("0001_t.sql", "-- T.\nCREATE TABLE t (id int, name text);\n")
    write(
        "0002_index.sql",
        "-- transactional: false\n-- Index t.name without blocking writes.\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_name_idx ON t (name);\n",
    )
    migrator = Migrator(empty_db_url, directory=mdir)
    assert [m.transactional for m in read_migration_files(mdir)] == [True, False]
    migrator.apply()
    assert [s.description for s in migrator.status()][1] == (
        "Index t.name without blocking writes."
    )
    write("0002_index.rollback.sql", "DROP INDEX CONCURRENTLY IF EXISTS t_name_idx;\n")
    assert [m.id for m in migrator.rollback()] == ["0002_index"]
    assert migrator.apply()


def test_non_transactional_file_with_two_statements_is_refused(
    empty_db_url: str, mdir: Path, write: Write
) -> None:
    write("0001_two.sql", "-- transactional: false\nCREATE TABLE x ();\nSELECT 2;\n")
    with pytest.raises(MigrationError, match="exactly one statement"):
        Migrator(empty_db_url, directory=mdir).apply()
    assert "x" not in tables(empty_db_url)


def test_rollback_needs_a_rollback_file(empty_db_url: str, mdir: Path, write: Write) -> None:
    write("0001_a.sql", "-- A.\nCREATE TABLE a (id int);\n")
    migrator = Migrator(empty_db_url, directory=mdir)
    migrator.apply()
    with pytest.raises(MigrationError, match=r"0001_a.rollback.sql does not exist"):
        migrator.rollback()
    write("0001_a.rollback.sql", "DROP TABLE a;\n")
    assert [m.id for m in migrator.rollback()] == ["0001_a"]
    assert log_count(empty_db_url, "rollback") == 1
    with pytest.raises(InvalidInput):
        migrator.rollback(count=0)


def test_percent_signs_in_migrations_are_plain_sql(
    empty_db_url: str, mdir: Path, write: Write
) -> None:
    write(
        "0001_pct.sql",
        "-- Percent.\nCREATE TABLE p (v text CHECK (v NOT LIKE '%%x%' AND v <> '%(name)s'));\n",
    )
    Migrator(empty_db_url, directory=mdir).apply()


def test_migrations_applied_by_plain_yoyo_are_adopted(empty_db_url: str, tmp_path: Path) -> None:
    from yoyo import get_backend, read_migrations

    directory = tmp_path / "m"
    shutil.copytree(migrations_dir(), directory)
    backend = get_backend(empty_db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with backend.lock():
        backend.apply_migrations(backend.to_apply(read_migrations(str(directory))))
    backend.connection.close()
    migrator = Migrator(empty_db_url, directory=directory)
    assert {s.state for s in migrator.status()} == {"applied"}
    assert migrator.apply() == []


def test_yoyo_reads_our_records(empty_db_url: str) -> None:
    from yoyo import get_backend, read_migrations

    Migrator(empty_db_url).apply()
    backend = get_backend(empty_db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    assert len(backend.to_apply(read_migrations(str(migrations_dir())))) == 0
    backend.connection.close()


def test_rollback_inside_a_failed_statement_keeps_records(
    empty_db_url: str, mdir: Path, write: Write
) -> None:
    write("0001_a.sql", "-- A.\nCREATE TABLE a (id int);\n")
    write("0001_a.rollback.sql", "DROP TABLE nope;\n")
    migrator = Migrator(empty_db_url, directory=mdir)
    migrator.apply()
    with pytest.raises(MigrationError, match=r"0001_a\.rollback\.sql:1"):
        migrator.rollback()
    assert [s.state for s in migrator.status()] == ["applied"]
    assert "a" in tables(empty_db_url)


@pytest.mark.parametrize(
    "control", ["BEGIN;", "COMMIT;", "-- note\nCOMMIT;", "START TRANSACTION;", "ROLLBACK;", "END;"]
)
def test_transaction_control_in_a_migration_is_refused(
    empty_db_url: str, mdir: Path, write: Write, control: str
) -> None:
    write("0001_tx.sql", f"-- Tx.\nCREATE TABLE t1 (a int);\n{control}\nCREATE TABLE t2 (a int);\n")
    with pytest.raises(MigrationError, match=r"0001_tx.sql:\d+: no BEGIN, COMMIT or ROLLBACK"):
        Migrator(empty_db_url, directory=mdir).apply()
    assert not {"t1", "t2"} & set(tables(empty_db_url))


def test_rollback_to_savepoint_is_allowed(empty_db_url: str, mdir: Path, write: Write) -> None:
    write(
        "0001_sp.sql",
        "-- Savepoints.\nCREATE TABLE t (a int);\nSAVEPOINT s;\nINSERT INTO t VALUES (1);\n"
        "ROLLBACK TO SAVEPOINT s;\nRELEASE SAVEPOINT s;\n",
    )
    Migrator(empty_db_url, directory=mdir).apply()
    assert "t" in tables(empty_db_url)


def test_a_failed_concurrent_index_is_never_recorded(
    empty_db_url: str, mdir: Path, write: Write
) -> None:
    write("0001_t.sql", "-- T.\nCREATE TABLE t (name text);\nINSERT INTO t VALUES ('a'), ('a');\n")
    write(
        "0002_unique.sql",
        "-- transactional: false\n-- Unique names.\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_name_key ON t (name);\n",
    )
    migrator = Migrator(empty_db_url, directory=mdir)
    with pytest.raises(MigrationError, match="DROP INDEX CONCURRENTLY t_name_key"):
        migrator.apply()
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        CHECKS.dedupe_t.exec(conn)
    # The INVALID index is still there and IF NOT EXISTS would skip it: refused again.
    with pytest.raises(MigrationError, match=r"not recorded as applied.*INVALID index"):
        migrator.apply()
    assert [s.state for s in migrator.status()] == ["applied", "pending"]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        CHECKS.drop_t_name_key.exec(conn)
    migrator.apply()
    assert [s.state for s in migrator.status()] == ["applied", "applied"]


def test_a_rollback_file_may_set_its_own_transactional_mode(
    empty_db_url: str, mdir: Path, write: Write
) -> None:
    write("0001_t.sql", "-- T.\nCREATE TABLE t (name text);\nCREATE INDEX t_name ON t (name);\n")
    write(
        "0001_t.rollback.sql",
        "-- transactional: false\nDROP INDEX CONCURRENTLY t_name;\n",
    )
    migrator = Migrator(empty_db_url, directory=mdir)
    migrator.apply()
    assert [m.id for m in migrator.rollback()] == ["0001_t"]


def test_rollback_checks_every_file_before_undoing_anything(
    empty_db_url: str, mdir: Path, write: Write
) -> None:
    write("0001_a.sql", "-- A.\nCREATE TABLE a (id int);\n")
    write("0002_b.sql", "-- B.\nCREATE TABLE b (id int);\n")
    write("0002_b.rollback.sql", "DROP TABLE b;\n")
    migrator = Migrator(empty_db_url, directory=mdir)
    migrator.apply()
    with pytest.raises(MigrationError, match=r"0001_a\.rollback\.sql does not exist"):
        migrator.rollback(count=2)
    assert {"a", "b"} <= set(tables(empty_db_url))
