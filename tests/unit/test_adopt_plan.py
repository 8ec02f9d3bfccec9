"""trampolin.adopt_plan: recognising the app's Prisma schema, and the report (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from trampolin.adopt_plan import (
    PRISMA_TABLES,
    Derived,
    Facts,
    Moved,
    PlanLimits,
    Report,
    Skipped,
    lines,
    moves,
    recognise,
    report_as_json,
    table_skips,
)
from trampolin.errors import AdoptionRefused, TrampolinError

TYPES = {
    "text": "text",
    "int": "integer",
    "bool": "boolean",
    "time": "timestamp(3) without time zone",
    "jsonb": "jsonb",
    "text[]": "text[]",
    "status": '"CsvUploadStatus"',
}


def app_columns() -> dict[str, dict[str, str]]:
    """The columns of the app's tables as format_type() spells them (production script too)."""
    columns = {t.name: {c: TYPES[k] for c, k in t.columns.items()} for t in PRISMA_TABLES}
    columns["UrlAnalysis"]["searchId"] = "text"
    return columns


def facts(**changes: Any) -> Facts:
    base: dict[str, Any] = {
        "schema": "public",
        "prisma_migrations": True,
        "archive_schema": False,
        "adopted": False,
        "columns": app_columns(),
        "migrations": (("20250903053802_init", datetime(2025, 9, 3, tzinfo=UTC), None),),
    }
    return Facts(**{**base, **changes})


def refused(**changes: Any) -> str:
    with pytest.raises(AdoptionRefused) as caught:
        recognise(facts(**changes))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_apps_schema_is_recognised() -> None:
    assert recognise(facts()) == "prisma"
    without_search = app_columns()
    del without_search["Search"]  # made by the hand-written production script only
    del without_search["UrlAnalysis"]["searchId"]
    assert recognise(facts(columns=without_search)) == "prisma"
    as_text = app_columns()
    as_text["CsvUpload"]["status"] = "text"  # the production script's variant
    as_text["Subscription"]["status"] = 'public."SubscriptionStatus"'
    as_text["User"]["createdAt"] = "timestamp without time zone"
    assert recognise(facts(columns=as_text)) == "prisma"


def test_an_adopted_database_is_recognised() -> None:
    assert recognise(facts(prisma_migrations=False, adopted=True, columns={})) == "adopted"


def test_anything_else_is_refused_in_one_line() -> None:
    assert refused(prisma_migrations=False, columns={}).startswith(
        "not a Prisma-made database: schema public has no _prisma_migrations"
    )
    assert "schema prisma_archive already exists" in refused(archive_schema=True)
    missing = app_columns()
    del missing["CsvRow"]
    assert 'no table "CsvRow"' in refused(columns=missing)
    no_column = app_columns()
    del no_column["User"]["passwordHash"]
    assert '"User" has no column "passwordHash"' in refused(columns=no_column)
    zoned = app_columns()
    zoned["Session"]["expires"] = "timestamp(3) with time zone"
    assert refused(columns=zoned).startswith(
        '"Session"."expires" is timestamp(3) with time zone, not the app\'s timestamp(3)'
    )
    wrong = app_columns()
    wrong["CsvRow"]["data"] = "json"
    assert '"CsvRow"."data" is json, not the app\'s jsonb' in refused(columns=wrong)
    no_links = app_columns()
    del no_links["UrlAnalysis"]["searchId"]
    assert refused(columns=no_links).startswith(
        'a "Search" table, but "UrlAnalysis"."searchId" is missing'
    )
    odd_links = app_columns()
    odd_links["UrlAnalysis"]["searchId"] = "integer"
    assert '"UrlAnalysis"."searchId" is integer' in refused(columns=odd_links)
    unfinished = (("20250905_x", None, None),)
    assert "Prisma migration 20250905_x did not finish" in refused(migrations=unfinished)
    rolled_back = (("20250905_x", None, datetime(2025, 9, 5, tzinfo=UTC)),)
    assert recognise(facts(migrations=rolled_back)) == "prisma"
    assert issubclass(AdoptionRefused, TrampolinError)


def test_full_targets_are_skipped_whole() -> None:
    assert table_skips({"users": 0, "refunds": 0}) == []
    skips = table_skips({"users": 2, "csv_rows": 0, "usage_ledger": 5})
    assert [(s.table, s.id, s.rows) for s in skips] == [
        ("users", None, 2),
        ("usage_ledger", None, 5),
    ]
    assert all("already holds rows" in s.reason for s in skips)


def test_every_app_table_has_a_home() -> None:
    homes = {t.name: t.into for t in PRISMA_TABLES}
    assert homes == {
        "Role": "roles",
        "User": "users",
        "Account": "accounts",
        "Session": "sessions",
        "VerificationToken": "verification_tokens",
        "Subscription": "subscriptions",
        "Search": "searches",
        "UrlAnalysis": "url_analyses",
        "CsvUpload": "csv_uploads",
        "CsvRow": "csv_rows",
        "Refund": "refunds",
        "_prisma_migrations": None,
    }


def test_report_lines_and_json() -> None:
    rows = {"Role": 2, "User": 3, "CsvRow": 5, "_prisma_migrations": 2}
    plan = Report(
        "plan",
        "public",
        moves(rows),
        (Skipped("User", "cm1", "has no e-mail"), Skipped("CsvRow", None, "not listed: x", 4)),
        ("20250903053802_init",),
    )
    assert [m.table for m in plan.tables] == ["Role", "User", "CsvRow", "_prisma_migrations"]
    assert plan.skipped_total == 5
    assert not plan.adoptable
    text = "\n".join(lines(plan))
    assert '"User"' in text
    assert "3 rows -> users" in text
    assert "_prisma_migrations" in text
    assert "prisma_archive only" in text
    assert "cannot be taken over: 5 row(s)" in text
    assert '"User" cm1: has no e-mail' in text
    assert '"CsvRow" (4 rows): not listed: x' in text
    assert text.endswith("then run again")
    data = report_as_json(plan)
    assert data["tables"]["User"] == {"rows": 3, "into": "users"}
    assert data["skipped"][0] == {
        "table": "User",
        "id": "cm1",
        "reason": "has no e-mail",
        "rows": 1,
    }
    assert data["adoptable"] is False

    plans = (PlanLimits("price_gold", 2500, 10, 7),)
    derived = (Derived("usage_periods", 4, '"Subscription" counters'),)
    listed = Report("plan", "public", moves(rows), plans=plans)
    text = "\n".join(lines(listed))
    assert "price_gold: 2500 a month, 10 in a trial (7 subscriptions)" in text
    assert "compare with the app's PLAN_LIMITS" in text
    assert report_as_json(listed)["plans"] == [
        {"price_id": "price_gold", "monthly_limit": 2500, "trial_limit": 10, "subscriptions": 7}
    ]
    made = Report("adopted", "public", moves(rows), plans=plans, derived=derived)
    assert '4 rows -> usage_periods (from "Subscription" counters)' in "\n".join(lines(made))
    assert report_as_json(made)["derived"] == {
        "usage_periods": {"rows": 4, "from": '"Subscription" counters'}
    }

    fine = Report("plan", "public", moves(rows))
    assert fine.adoptable
    assert lines(fine)[-1] == "dry run: adoptable (nothing was changed)"
    done = Report("adopted", "public", moves(rows))
    assert lines(done)[-1].startswith("adopted: ")
    when = datetime(2025, 9, 6, 8, 0, tzinfo=UTC)
    again = Report("already adopted", "public", (Moved("User", 3, "users"),), adopted_at=when)
    assert lines(again) == [
        "already adopted on 2025-09-06 08:00:00 UTC: the Prisma tables are in schema "
        "prisma_archive; nothing to do"
    ]
    assert report_as_json(again)["adopted_at"] == "2025-09-06T08:00:00+00:00"
