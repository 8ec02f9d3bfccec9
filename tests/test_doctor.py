"""`trampolin doctor` on a healthy, an unmigrated, an unreachable and a pooled database."""

import json

from tests.support import PgBouncer, run_cli


def test_healthy_database_exits_0(direct_db_url: str) -> None:
    result = run_cli("doctor", env={"DATABASE_URL": direct_db_url, "DIRECT_URL": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    for line in ("reachable", "server version", "migrations", "seed roles"):
        assert line in result.stdout
    assert "FAIL" not in result.stdout


def test_unmigrated_database_needs_action(empty_db_url: str) -> None:
    result = run_cli("doctor", "--json", env={"DATABASE_URL": empty_db_url, "DIRECT_URL": ""})
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    levels = {check["name"]: check["level"] for check in report["checks"]}
    assert levels["migrations"] == "fail"
    assert levels["seed roles"] == "fail"


def test_unreachable_server_fails_without_the_password() -> None:
    result = run_cli(
        "doctor", env={"DATABASE_URL": "postgresql://u:topsecret@127.0.0.1:1/x", "DIRECT_URL": ""}
    )
    assert result.returncode == 1
    assert "FAIL  reachable" in result.stdout
    assert "topsecret" not in result.stdout + result.stderr


def test_pooled_url_without_direct_url_needs_action(
    pgbouncer: PgBouncer, db_name: str, direct_db_url: str
) -> None:
    pooled = pgbouncer.url(db_name)
    result = run_cli("doctor", "--json", env={"DATABASE_URL": pooled, "DIRECT_URL": ""})
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert "transaction-mode pooler" in checks["pooler"]["detail"]
    assert checks["direct url"]["level"] == "fail"
    assert "set DIRECT_URL" in checks["direct url"]["detail"]

    fixed = run_cli("doctor", env={"DATABASE_URL": pooled, "DIRECT_URL": direct_db_url})
    assert fixed.returncode == 0, fixed.stdout


def test_direct_url_pointing_at_the_pooler_is_called_a_pooler(
    pgbouncer: PgBouncer, db_name: str
) -> None:
    env = {
        "DATABASE_URL": pgbouncer.url(db_name),
        "DIRECT_URL": pgbouncer.url(db_name, flagged=False),
    }
    result = run_cli("doctor", "--json", env=env)
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["direct url"]["level"] == "fail"
    assert "is a transaction-mode pooler" in checks["direct url"]["detail"]
    assert "set DIRECT_URL" in checks["direct url"]["detail"]


def test_unflagged_pooler_without_direct_url_is_not_direct(
    pgbouncer: PgBouncer, db_name: str
) -> None:
    env = {"DATABASE_URL": pgbouncer.url(db_name, flagged=False), "DIRECT_URL": ""}
    result = run_cli("doctor", "--json", env=env)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["pooler"]["level"] == "warn"
    assert checks["direct url"]["level"] == "fail"
    assert "is a transaction-mode pooler" in checks["direct url"]["detail"]


def test_a_separate_direct_url_is_checked_and_ok(direct_db_url: str) -> None:
    env = {"DATABASE_URL": direct_db_url, "DIRECT_URL": direct_db_url + "?application_name=deploy"}
    result = run_cli("doctor", "--json", env=env)
    assert result.returncode == 0, result.stdout
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["direct url"]["level"] == "ok"
    assert "(from DIRECT_URL)" in checks["direct url"]["detail"]


def test_an_unreachable_direct_url_is_reported_not_fatal(direct_db_url: str) -> None:
    env = {"DATABASE_URL": direct_db_url, "DIRECT_URL": "postgresql://postgres@127.0.0.1:1/x"}
    result = run_cli("doctor", "--json", env=env)
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["direct url"]["level"] == "fail"
    assert checks["reachable"]["level"] == "ok"


def test_a_malformed_direct_url_needs_action(direct_db_url: str) -> None:
    env = {"DATABASE_URL": direct_db_url, "DIRECT_URL": "mysql://u@h/db"}
    result = run_cli("doctor", "--json", env=env)
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["direct url"]["level"] == "fail"
    assert "DIRECT_URL: expected postgresql://" in checks["direct url"]["detail"]
