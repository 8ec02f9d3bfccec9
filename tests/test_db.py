"""Connections, pools, PgBouncer in transaction mode and the direct URL."""

import asyncio
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

import trampolin
from tests.cli_support import LateServer
from tests.support import PgBouncer, TestServer, run_cli
from trampolin import db, queries
from trampolin.db import connect, connection_path, pins_sessions, wait_until_reachable
from trampolin.errors import ConfigError, ConnectionFailed, InvalidInput
from trampolin.migrations import Migrator

ADMIN = queries.load("admin")
CHECKS_PATH = Path(__file__).parent / "sql" / "checks.sql"


def setting(conn: psycopg.Connection[Any], name: str) -> str:
    from trampolin import queries

    row = queries.load_file(CHECKS_PATH).current_setting.one(conn, name=name)
    assert row is not None
    return str(row["value"])


def test_pool_gives_checked_connections_with_a_statement_timeout(direct_db_url: str) -> None:
    with trampolin.pool(direct_db_url, min_size=1, max_size=2, statement_timeout="1500ms") as pool:
        with pool.connection() as conn:
            assert setting(conn, "statement_timeout") == "1500ms"
            assert setting(conn, "application_name") == "trampolin"
        assert pool.get_stats()["pool_max"] == 2


def test_statement_timeout_stops_a_runaway_query(direct_db_url: str) -> None:
    with (
        connect(direct_db_url, statement_timeout="100ms") as conn,
        pytest.raises(psycopg.errors.QueryCanceled),
    ):
        ADMIN.sleep.one(conn, seconds=5)


def test_pool_default_is_database_url(
    direct_db_url: str, db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", direct_db_url)
    monkeypatch.setenv("TRAMPOLIN_STATEMENT_TIMEOUT", "7s")
    with trampolin.pool() as pool, pool.connection() as conn:
        assert conn.info.dbname == db_name
        assert setting(conn, "statement_timeout") == "7s"


def test_direct_connection_is_seen_as_direct(direct_db_url: str, server: TestServer) -> None:
    with connect(direct_db_url) as conn:
        # Over a Unix socket (the embedded server) nothing tells a pooler apart.
        assert connection_path(conn) == ("unknown" if server.embedded else "direct")


def test_pgbouncer_flag_turns_prepared_statements_off(pgbouncer: PgBouncer, db_name: str) -> None:
    url = pgbouncer.url(db_name)
    with connect(url, autocommit=True) as conn:
        assert conn.prepare_threshold is None
        assert connection_path(conn) == "proxied"
        assert not pins_sessions(conn, url)
        for _ in range(10):  # past psycopg's default prepare threshold of 5
            assert ADMIN.server_version.one(conn) is not None


def test_pool_through_pgbouncer_from_many_threads(pgbouncer: PgBouncer, db_name: str) -> None:
    url = pgbouncer.url(db_name)
    errors: list[BaseException] = []
    with trampolin.pool(url, min_size=2, max_size=4) as pool:

        def work() -> None:
            try:
                for _ in range(20):
                    with pool.connection() as conn:
                        assert ADMIN.server_version.one(conn) is not None
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


def test_migrate_through_a_transaction_pooler_is_refused(
    pgbouncer: PgBouncer, empty_db_name: str
) -> None:
    name = empty_db_name
    unflagged = pgbouncer.url(name, flagged=False)
    with pytest.raises(ConfigError, match="set DIRECT_URL"):
        Migrator(unflagged).apply()
    flagged = run_cli("migrate", env={"DATABASE_URL": pgbouncer.url(name), "DIRECT_URL": ""})
    assert flagged.returncode == 2
    assert "pgbouncer=true" in flagged.stderr
    assert "set DIRECT_URL" in flagged.stderr


def test_migrate_uses_direct_url_when_database_url_is_pooled(
    pgbouncer: PgBouncer, empty_db_name: str, empty_db_url: str
) -> None:
    name = empty_db_name
    env = {"DATABASE_URL": pgbouncer.url(name), "DIRECT_URL": empty_db_url}
    result = run_cli("migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert "applied 0001_roles_and_users" in result.stdout
    assert run_cli("seed", env=env).returncode == 0
    shown = run_cli("db", "url", "--direct", env=env)
    assert shown.stdout.strip() == empty_db_url


def test_unreachable_server_is_connection_failed() -> None:
    with pytest.raises(ConnectionFailed, match="cannot connect to postgresql://x:\\*\\*\\*@"):
        connect("postgresql://x:pw@127.0.0.1:1/db", connect_timeout=2)


def test_pool_replaces_a_connection_that_died_while_idle(direct_db_url: str) -> None:
    with (
        trampolin.pool(direct_db_url, min_size=1, max_size=1, check_idle_after=0) as pool,
        connect(direct_db_url, autocommit=True) as admin,
    ):
        with pool.connection() as conn:
            first = ADMIN.backend_pid.one(conn)
        assert first is not None
        ADMIN.terminate_backend.one(admin, pid=first["pid"])
        with pool.connection() as conn:  # checked, found dead, replaced
            second = ADMIN.backend_pid.one(conn)
        assert second is not None
        assert second["pid"] != first["pid"]


def test_pool_connections_are_autocommit_and_a_unit_of_work_is_a_transaction(
    direct_db_url: str,
) -> None:
    with trampolin.pool(direct_db_url, max_size=1) as pool, pool.connection() as conn:
        assert conn.autocommit
        with conn.transaction():
            assert conn.info.transaction_status.name == "INTRANS"


def test_the_package_exports_both_pools() -> None:
    assert trampolin.pool is db.pool
    assert trampolin.async_pool is db.async_pool


def test_async_pool_connections_are_autocommit(direct_db_url: str) -> None:
    async def check() -> None:
        async with (
            trampolin.async_pool(direct_db_url, max_size=1) as pool,
            pool.connection() as conn,
        ):
            assert conn.autocommit
            assert await ADMIN.server_version.one(conn) is not None
            assert conn.info.transaction_status.name == "IDLE"  # nothing left open

    asyncio.run(check())


def test_wait_until_reachable_retries_until_the_server_answers(
    server: TestServer, db_name: str
) -> None:
    late = LateServer(server, delay=1.0)
    failures: list[ConnectionFailed] = []
    try:
        wait_until_reachable(late.url(db_name), 60, on_retry=failures.append)
    finally:
        late.close()
    assert failures  # refused at first, then accepted
    assert "cannot connect to" in str(failures[0])


def test_wait_until_reachable_gives_up_naming_the_last_error() -> None:
    with pytest.raises(
        ConnectionFailed, match=r"gave up waiting after 0.5s: cannot connect"
    ) as caught:
        wait_until_reachable("postgresql://u:pw@127.0.0.1:1/db", 0.5)
    assert "pw@" not in str(caught.value)


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1.0])
def test_wait_until_reachable_takes_only_a_finite_timeout(timeout: float) -> None:
    with pytest.raises(InvalidInput, match="number of seconds"):
        wait_until_reachable("postgresql://u@127.0.0.1:1/db", timeout)
