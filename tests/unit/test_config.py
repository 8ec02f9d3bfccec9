"""Where the database is: URL precedence and normalisation (no database needed)."""

import pytest

from trampolin.config import normalize_url, redact, resolve
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


def test_no_url_and_no_embedded_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="set DATABASE_URL"):
        resolve(None, start_embedded=False)
