"""Named queries on a real connection: kinds, parameters, both connection types."""

import asyncio
from typing import Any

import psycopg
import pytest

from trampolin import queries


def test_calling_with_the_wrong_kind_or_missing_params_fails(
    conn: psycopg.Connection[Any],
) -> None:
    admin = queries.load("admin")
    with pytest.raises(TypeError, match=r"database_exists \(admin.sql:\d+\) is :one, not :many"):
        admin.database_exists.many(conn, name="x")
    with pytest.raises(TypeError, match="needs name"):
        admin.database_exists.one(conn)


def test_values_are_bound_parameters(conn: psycopg.Connection[Any]) -> None:
    hostile = "x'; DROP TABLE users; --"
    assert queries.load("admin").database_exists.one(conn, name=hostile) is None
    assert queries.load("admin").server_version.one(conn) is not None


def test_every_kind_runs_on_an_async_connection_too(db_url: str) -> None:
    from trampolin.db import async_connect

    admin = queries.load("admin")

    async def run() -> None:
        async with await async_connect(db_url, autocommit=True) as aconn:
            assert await admin.database_exists.one(aconn, name="nope") is None
            version = await admin.server_version.one_tuple(aconn)
            assert version is not None
            assert version[0] > 0
            assert await queries.load("roles").list_users.many(aconn) == []
            with pytest.raises(TypeError, match="needs name"):
                await admin.database_exists.one(aconn)

    asyncio.run(run())
