"""A database that Prisma Migrate made is never migrated beside: every command that would use
it refuses with one line naming `trampolin adopt prisma`, and writes nothing."""

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import TestServer, run_cli
from trampolin import queries
from trampolin.db import connect
from trampolin.errors import MigrationError
from trampolin.migrations import Migrator, unadopted_prisma

PRISMA = queries.load_file(Path(__file__).parent / "sql" / "prisma_guard.sql")


@pytest.fixture
def prisma_db_url(empty_db_name: str, server: TestServer) -> str:
    url = server.url(empty_db_name)
    with connect(url, autocommit=True) as conn:
        PRISMA.make_prisma_database.exec(conn)
    return url


def tables(url: str) -> list[str]:
    with connect(url, autocommit=True) as conn:
        return [row["name"] for row in PRISMA.table_names.many(conn)]


PRISMA_TABLES = ["public.Role", "public.User", "public._prisma_migrations"]


def test_the_library_refuses_to_migrate_it(prisma_db_url: str) -> None:
    with pytest.raises(MigrationError, match="trampolin adopt prisma"):
        Migrator(prisma_db_url).apply()
    assert tables(prisma_db_url) == PRISMA_TABLES


@pytest.mark.parametrize(
    "args",
    [
        ["migrate"],
        ["migrate", "status"],
        ["migrate", "rollback", "--yes"],
        ["seed"],
        ["user", "list"],
        ["user", "add", "new@example.com"],
        ["auth", "prune"],
        ["stripe", "events"],
        ["csv", "cleanup"],
    ],
)
def test_commands_refuse_with_one_line_and_write_nothing(
    prisma_db_url: str, args: list[str]
) -> None:
    result = run_cli(*args, env={"DATABASE_URL": prisma_db_url, "DIRECT_URL": ""})
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: this database was made by Prisma Migrate")
    assert "`trampolin adopt prisma`" in line
    assert tables(prisma_db_url) == PRISMA_TABLES


def test_what_reads_it_as_it_is_still_works(prisma_db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": prisma_db_url, "DIRECT_URL": ""}
    assert run_cli("db", "url", env=env).returncode == 0
    dumped = run_cli("dump", "-q", "-o", str(tmp_path / "before-adopt.dump"), env=env)
    assert dumped.returncode == 0, dumped.stderr  # the backup before the take-over
    doctor = run_cli("doctor", env=env)
    assert doctor.returncode == 1
    assert "FAIL  migrations" in doctor.stdout
    assert "run `trampolin adopt prisma`" in doctor.stdout
    assert tables(prisma_db_url) == PRISMA_TABLES


def test_once_adopted_it_migrates_as_usual(prisma_db_url: str) -> None:
    with connect(prisma_db_url, autocommit=True) as conn:
        assert unadopted_prisma(conn)
        PRISMA.archive_prisma_tables.exec(conn)
        assert not unadopted_prisma(conn)
    migrated = run_cli("migrate", env={"DATABASE_URL": prisma_db_url, "DIRECT_URL": ""})
    assert migrated.returncode == 0, migrated.stderr
    assert "public.users" in tables(prisma_db_url)


def test_a_trampolin_database_is_not_taken_for_a_prisma_one(
    conn: psycopg.Connection[Any],
) -> None:
    assert not unadopted_prisma(conn)
