"""`trampolin doctor`: check what a deploy or a service depends on, and say what needs action."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psycopg

from trampolin import queries
from trampolin.backup import drop_abandoned_scratch
from trampolin.backup.tools import choose_tool, find_tools
from trampolin.config import DatabaseTarget
from trampolin.db import DEFAULT_STATEMENT_TIMEOUT, connect, connection_path, pins_sessions
from trampolin.errors import ConnectionFailed, TrampolinError
from trampolin.migrations import Migrator, unadopted_prisma

Level = Literal["ok", "warn", "fail", "info"]
SEED_ROLES = ("admin", "user")

_doctor = queries.load("doctor")
_admin = queries.load("admin")


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def needs_action(checks: list[Check]) -> bool:
    return any(check.level == "fail" for check in checks)


def run_checks(
    service: Callable[[], DatabaseTarget], direct: Callable[[], DatabaseTarget]
) -> list[Check]:
    """Every check, in order; a failure to connect ends the list early."""
    try:
        target = service()
    except TrampolinError as exc:
        return [Check("database url", "fail", str(exc))]
    checks = [Check("database url", "info", f"{target.display} (from {target.source})")]
    started = time.perf_counter()
    try:
        conn = connect(target.url, autocommit=True, statement_timeout=DEFAULT_STATEMENT_TIMEOUT)
    except TrampolinError as exc:
        checks.append(Check("reachable", "fail", str(exc)))
        return checks
    with conn:
        connect_ms = (time.perf_counter() - started) * 1000
        checks.append(_reachable(conn, connect_ms))
        major, version_check = _server_version(conn)
        checks.append(version_check)
        pooled = target.pgbouncer or _through_transaction_pooler(conn, target.url)
        checks.append(_statement_timeout(conn))
    checks.append(_pooler(target, pooled))
    try:
        direct_target = direct()
    except TrampolinError as exc:
        checks.append(Check("direct url", "fail", str(exc)))
    else:
        checks.extend(_direct_url(target, pooled, direct_target))
        try:
            checks.extend(_schema_checks(direct_target))
            checks.append(_verify_scratch(direct_target))
        except ConnectionFailed:  # said on the direct url's line already
            pass
    checks.extend(_client_tool_checks(major))
    return checks


def _reachable(conn: psycopg.Connection[Any], connect_ms: float) -> Check:
    round_trips = []
    for _ in range(5):
        started = time.perf_counter()
        _doctor.ping.one(conn)
        round_trips.append((time.perf_counter() - started) * 1000)
    median = statistics.median(round_trips)
    return Check("reachable", "ok", f"connect {connect_ms:.1f} ms, round trip {median:.2f} ms")


def _server_version(conn: psycopg.Connection[Any]) -> tuple[int, Check]:
    version = _admin.server_version.one(conn)
    assert version is not None
    major = int(version["version_num"]) // 10000
    advice = "" if major >= 14 else " (14 or newer is recommended)"
    level: Level = "ok" if major >= 14 else "warn"
    return major, Check("server version", level, f"PostgreSQL {version['version']}{advice}")


def _statement_timeout(conn: psycopg.Connection[Any]) -> Check:
    timeout = _doctor.statement_timeout.one(conn)
    assert timeout is not None
    return Check(
        "statement timeout",
        "ok" if timeout["value"] not in ("0", "0ms") else "warn",
        f"service connections run with statement_timeout={timeout['value']}",
    )


def _through_transaction_pooler(conn: psycopg.Connection[Any], url: str) -> bool:
    return connection_path(conn) == "proxied" and not pins_sessions(conn, url)


def _pooler(target: DatabaseTarget, pooled: bool) -> Check:
    if not pooled:
        return Check("pooler", "info", "none detected: DATABASE_URL is a direct connection")
    if target.pgbouncer:
        detail = "transaction-mode pooler (pgbouncer=true): prepared statements are off"
        return Check("pooler", "info", detail)
    return Check(
        "pooler",
        "warn",
        "transaction-mode pooler detected but the URL lacks ?pgbouncer=true: add it so that "
        "prepared statements are turned off",
    )


def _direct_url(service: DatabaseTarget, pooled: bool, direct: DatabaseTarget) -> list[Check]:
    """The direct URL's line: needed behind a pooler, and probed whenever it is its own URL."""
    if direct.url == service.url and not pooled:
        return []  # the service URL is direct: nothing more to say
    shown = f"{direct.display} (from {direct.source})"
    is_pooler = pooled
    if direct.url != service.url:
        try:
            with connect(direct.url, autocommit=True) as conn:
                is_pooler = _through_transaction_pooler(conn, direct.url)
        except TrampolinError as exc:
            return [Check("direct url", "fail", str(exc))]
    if is_pooler:
        return [
            Check(
                "direct url",
                "fail",
                f"{shown} is a transaction-mode pooler: migrate, seed and dump need a direct "
                "connection; set DIRECT_URL to the database's direct URL (Prisma's directUrl)",
            )
        ]
    return [Check("direct url", "ok", shown)]


def _schema_checks(target: DatabaseTarget) -> list[Check]:
    with connect(target.url, autocommit=True) as conn:
        if unadopted_prisma(conn):
            return [
                Check(
                    "migrations",
                    "fail",
                    "Prisma Migrate made this database and trampolin has not taken it over: "
                    "run `trampolin adopt prisma`",
                )
            ]
        seed_check = _seed_roles(conn)
    try:
        statuses = Migrator(target.url).status()
    except TrampolinError as exc:
        return [Check("migrations", "fail", str(exc)), seed_check]
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status.state] = counts.get(status.state, 0) + 1
    drift = counts.get("edited", 0) + counts.get("missing", 0)
    pending = counts.get("pending", 0)
    detail = f"{counts.get('applied', 0)} applied, {pending} pending"
    if drift:
        detail += f", {drift} edited or missing: see `trampolin migrate status`"
    elif pending:
        detail += ": run `trampolin migrate`"
    return [Check("migrations", "fail" if drift or pending else "ok", detail), seed_check]


def _seed_roles(conn: psycopg.Connection[Any]) -> Check:
    present = _doctor.roles_table_exists.one(conn)
    if present is None or not present["present"]:
        return Check("seed roles", "fail", "no roles table yet: run `trampolin migrate`")
    missing = [row["name"] for row in _doctor.missing_seed_roles.many(conn, names=list(SEED_ROLES))]
    if missing:
        return Check("seed roles", "fail", f"missing {', '.join(missing)}: run `trampolin seed`")
    return Check("seed roles", "ok", ", ".join(SEED_ROLES) + " present")


def _verify_scratch(target: DatabaseTarget) -> Check:
    dropped = drop_abandoned_scratch(target.url)
    left = f"dropped {', '.join(dropped)}, left" if dropped else "none left"
    return Check("verify scratch", "ok", f"{left} by killed `backup verify` runs")


def _client_tool_checks(server_major: int) -> list[Check]:
    checks = []
    for name in ("pg_dump", "pg_restore"):
        try:
            tool = choose_tool(name, find_tools(name), server_major)
        except TrampolinError as exc:
            checks.append(Check(name, "fail", str(exc)))
            continue
        checks.append(Check(name, "ok", f"{tool} at {tool.path} (server {server_major})"))
    return checks


def as_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [check.as_dict() for check in checks]
