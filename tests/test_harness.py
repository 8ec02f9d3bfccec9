"""The test harness itself: migrated template, fresh copy per test, user fixture."""

from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg

from tests.conftest import ROOT
from trampolin import queries


def test_each_test_gets_the_seeded_schema(conn: psycopg.Connection[Any]) -> None:
    roles = queries.load_file(ROOT / "tests" / "sql" / "checks.sql").role_names.many(conn)
    assert [row["name"] for row in roles] == ["admin", "user"]


def test_make_user_inserts_a_user(make_user: Callable[..., UUID]) -> None:
    assert isinstance(make_user(email="a@example.com"), UUID)
    assert make_user() != make_user()
