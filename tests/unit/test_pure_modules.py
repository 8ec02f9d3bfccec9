"""The pure modules import no database code, so that their unit tests need no server."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "trampolin"
PURE = [
    "values.py",
    "errors.py",
    "stripe_payload.py",
    "stripe_refund.py",
    "passwords.py",
    "csv_format.py",
    "csv_records.py",
    "csv_feed.py",
    "usage_periods.py",
    "analysis_urls.py",
    "adopt_plan.py",
    "subscription_records.py",
    "backup/tools.py",
    "backup/archive.py",
    "backup/running.py",
]
DATABASE_CODE = ("psycopg", "psycopg_pool", "trampolin.db", "trampolin.queries")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_no_database_code(module: str) -> None:
    imported = imported_modules(PACKAGE / module)
    database = sorted(name for name in imported if name.startswith(DATABASE_CODE))
    assert database == [], f"{module} imports {database}"
