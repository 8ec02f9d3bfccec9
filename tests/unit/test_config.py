"""Where the database is: URL precedence and normalisation (no database needed)."""

import os
import subprocess
import sys

import pytest

from trampolin.config import (
    database_target,
    direct_target,
    normalize_url,
    parse_url,
    redact,
    resolve,
)
from trampolin.errors import ConfigError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql://u@h/db"),
        (
            "postgresql://u@h/db?schema=app&sslmode=require",
            "postgresql://u@h/db?options=-csearch_path%3Dapp&sslmode=require",
        ),
        ("postgresql://u@h/db?connection_limit=5", "postgresql://u@h/db"),
    ],
)
def test_accepts_the_urls_prisma_and_providers_use(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "localhost:5432", ""])
def test_rejects_other_schemes_clearly(bad: str) -> None:
    with pytest.raises(ConfigError, match="expected postgresql://"):
        normalize_url(bad, origin="DATABASE_URL")


def test_rejects_unknown_connection_options_without_showing_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        normalize_url("postgresql://u:hunter2@h/db?bogus=1")
    assert "hunter2" not in str(caught.value)


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql://u:hunter2@h:5/db?x=1") == "postgresql://u:***@h:5/db?x=1"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_option_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://env@h/db")
    assert resolve("postgresql://opt@h/db").source == "--database-url"
    target = resolve(None)
    assert (target.source, target.url) == ("DATABASE_URL", "postgresql://env@h/db")


def test_nothing_set_is_none_for_the_cli_and_an_error_for_the_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DATABASE_URL", "DIRECT_URL", "TRAMPOLIN_EMBEDDED_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert database_target(None) is None  # the CLI starts the embedded server then
    assert direct_target(None, None) is None
    with pytest.raises(ConfigError, match="set DATABASE_URL"):
        resolve(None)


def test_direct_url_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://env@h/db")
    monkeypatch.setenv("DIRECT_URL", "postgresql://direct@h/db")

    def source(direct_option: str | None, option_url: str | None) -> str | None:
        target = direct_target(direct_option, option_url)
        return None if target is None else target.source

    assert source("postgresql://opt@h/db", "postgresql://db@h/db") == "--direct-url"
    assert source(None, "postgresql://db@h/db") == "--database-url"
    assert source(None, None) == "DIRECT_URL"
    monkeypatch.delenv("DIRECT_URL")
    assert source(None, None) == "DATABASE_URL"


def test_a_pooler_flagged_url_is_refused_for_session_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIRECT_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@pool:6543/db?pgbouncer=true")
    target = database_target(None)
    assert target is not None
    assert target.pgbouncer
    assert target.url == "postgresql://u@pool:6543/db"
    with pytest.raises(ConfigError, match="set DIRECT_URL"):
        direct_target(None, None, purpose="migrate")


@pytest.mark.parametrize(
    ("given", "pgbouncer"),
    [
        ("postgresql://u@h/db?pgbouncer=true", True),
        ("postgresql://u@h/db?pgbouncer=1&sslmode=require", True),
        ("postgresql://u@h/db?pgbouncer=false", False),
        ("postgresql://u@h/db", False),
    ],
)
def test_prisma_pgbouncer_flag(given: str, pgbouncer: bool) -> None:
    normalized, flagged = parse_url(given)
    assert flagged is pgbouncer
    assert "pgbouncer" not in normalized


@pytest.mark.parametrize(
    "url",
    [
        "postgresql:///db",  # Unix socket, default directory
        "postgresql://u@%2Fvar%2Frun%2Fpostgresql/db",
        "postgresql://u@[::1]:5432/db",
        "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write",
        "postgresql://u:p%40ss@h/db?application_name=x&keepalives=1",
    ],
)
def test_urls_libpq_takes_are_kept_as_they_are(url: str) -> None:
    assert normalize_url(url) == url


def test_a_password_with_an_unencoded_at_sign_is_named_not_shown() -> None:
    with pytest.raises(ConfigError, match="percent-encode") as caught:
        normalize_url("postgresql://u:p@ss@h/db", origin="DATABASE_URL")
    assert "p@ss" not in str(caught.value)
    assert str(caught.value).startswith("DATABASE_URL: ")


def test_config_starts_nothing_and_imports_no_embedded_server() -> None:
    probe = (
        "import sys, trampolin.config as c\n"
        "assert c.database_target(None) is None\n"
        "print(sorted(m for m in sys.modules if 'embedded' in m))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DIRECT_URL")}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]"
