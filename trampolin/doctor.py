"""`trampolin doctor`: check what a deploy or a service depends on, and say what needs action."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from trampolin.config import DatabaseTarget
from trampolin.errors import TrampolinError

Level = Literal["ok", "warn", "fail", "info"]
SEED_ROLES = ("admin", "user")


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

    from trampolin import queries
    from trampolin.db import DEFAULT_STATEMENT_TIMEOUT, connect, connection_path, pins_sessions

    doctor = queries.load("doctor")
    checks: list[Check] = []
    try:
        target = service()
    except TrampolinError as exc:
        return [Check("database url", "fail", str(exc))]
    checks.append(Check("database url", "info", f"{target.display} (from {target.source})"))

    started = time.perf_counter()
    try:
        conn = connect(target.url, autocommit=True, statement_timeout=DEFAULT_STATEMENT_TIMEOUT)
    except TrampolinError as exc:
        checks.append(Check("reachable", "fail", str(exc)))
        return checks
    with conn:
        connect_ms = (time.perf_counter() - started) * 1000
        round_trips = []
        for _ in range(5):
            started = time.perf_counter()
            doctor.ping.one(conn)
            round_trips.append((time.perf_counter() - started) * 1000)
        checks.append(
            Check(
                "reachable",
                "ok",
                f"connect {connect_ms:.1f} ms, round trip {statistics.median(round_trips):.2f} ms",
            )
        )
        version = queries.load("admin").server_version.one(conn)
        assert version is not None
        major = int(version["version_num"]) // 10000
        checks.append(
            Check(
                "server version",
                "ok" if major >= 14 else "warn",
                f"PostgreSQL {version['version']}"
                + ("" if major >= 14 else " (14 or newer is recommended)"),
            )
        )
        pooled = target.pgbouncer or (
            connection_path(conn) == "proxied" and not pins_sessions(conn, target.url)
        )
        timeout = doctor.statement_timeout.one(conn)
        assert timeout is not None
        checks.append(
            Check(
                "statement timeout",
                "ok" if timeout["value"] not in ("0", "0ms") else "warn",
                f"service connections run with statement_timeout={timeout['value']}",
            )
        )
    checks.extend(_pooler_checks(target, pooled, direct))
    direct_target = _direct_or_none(direct)
    if direct_target is not None:
        checks.extend(_schema_checks(direct_target))
    checks.extend(_client_tool_checks(major))
    return checks


def _direct_or_none(direct: Callable[[], DatabaseTarget]) -> DatabaseTarget | None:
    try:
        return direct()
    except TrampolinError:
        return None


def _pooler_checks(
    target: DatabaseTarget, pooled: bool, direct: Callable[[], DatabaseTarget]
) -> list[Check]:
    if not pooled:
        return [Check("pooler", "info", "none detected: DATABASE_URL is a direct connection")]
    checks = [
        Check(
            "pooler",
            "info" if target.pgbouncer else "warn",
            "transaction-mode pooler"
            + (
                " (pgbouncer=true): prepared statements are off"
                if target.pgbouncer
                else " detected but the URL lacks ?pgbouncer=true: add it so that "
                "prepared statements are turned off"
            ),
        )
    ]
    try:
        direct_target = direct()
    except TrampolinError as exc:
        checks.append(Check("direct url", "fail", str(exc)))
        return checks
    checks.append(
        Check("direct url", "ok", f"{direct_target.display} (from {direct_target.source})")
    )
    return checks


def _schema_checks(target: DatabaseTarget) -> list[Check]:
    from trampolin import queries
    from trampolin.db import connect
    from trampolin.migrations import Migrator

    checks: list[Check] = []
    try:
        statuses = Migrator(target.url).status()
    except TrampolinError as exc:
        return [Check("migrations", "fail", str(exc))]
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
    checks.append(Check("migrations", "fail" if drift or pending else "ok", detail))

    doctor = queries.load("doctor")
    with connect(target.url, autocommit=True) as conn:
        present = doctor.roles_table_exists.one(conn)
        if present is None or not present["present"]:
            checks.append(
                Check("seed roles", "fail", "no roles table yet: run `trampolin migrate`")
            )
        else:
            missing = [
                row["name"] for row in doctor.missing_seed_roles.many(conn, names=list(SEED_ROLES))
            ]
            checks.append(
                Check(
                    "seed roles",
                    "fail" if missing else "ok",
                    f"missing {', '.join(missing)}: run `trampolin seed`"
                    if missing
                    else ", ".join(SEED_ROLES) + " present",
                )
            )
    return checks


def _client_tool_checks(server_major: int) -> list[Check]:
    from trampolin.pgtools import choose_tool, find_tools

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
