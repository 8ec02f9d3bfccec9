"""After `trampolin adopt prisma`: passwords, subscriptions and usage, searches, analyses,
refunds, old upload ids and Stripe events naming old user ids, through the public API.

The Prisma fixture (tests/adopt_support.py, with Node's bcrypt hashes and the
business tables) is built and adopted once per module; each test gets a copy of
the adopted database. The app's rows are read back from prisma_archive.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.adopt_support import (
    EXPIRED_TRIAL,
    ODD_ANALYSES,
    ODD_UPLOAD_ID,
    database_copy,
    node_hashes,
    prisma_template,
    utc,
)
from tests.stripe_support import BASIL_CREATED, BASIL_UPDATED, CHECKOUT, variant
from tests.twins import Side
from trampolin import queries
from trampolin.adopt import adopt_database
from trampolin.analyses import Analyses
from trampolin.analysis_urls import normalize_url
from trampolin.auth import AuthAdapter
from trampolin.csv_uploads import CsvUploads
from trampolin.db import connect
from trampolin.errors import InvalidInput
from trampolin.refunds import Refunds
from trampolin.subscriptions import Subscriptions
from trampolin.usage import Usage
from trampolin.values import legacy_uuid

checks = queries.load_file(Path(__file__).parent / "sql" / "adopt_business.sql")
GRANTING = {"active", "trialing", "past_due"}


@pytest.fixture(scope="module")
def adopted_template() -> Iterator[str]:
    """The module's Prisma database, adopted once (copied by ``url``)."""
    with prisma_template() as prisma, database_copy(prisma) as url:
        assert adopt_database(url).state == "adopted"
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def url(adopted_template: str) -> Iterator[str]:
    """URL of this test's own copy of the adopted database."""
    with database_copy(adopted_template) as copy:
        yield copy


@pytest.fixture
def db(url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(url, autocommit=True) as conn:
        yield conn


# -- Passwords ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sync", "async"])
def test_every_node_hash_signs_in_unchanged(
    name: str, url: str, db: psycopg.Connection[Any]
) -> None:
    assert checks.changed_password_hashes.one(db) == {"changed": 0}
    holders = {row["hash"]: row for row in checks.archived_password_users.many(db)}
    side = Side(name, url, db)  # type: ignore[arg-type]
    try:
        auth = side.repo(AuthAdapter)
        for entry in node_hashes():
            old = holders[entry["hash"]]  # every Node hash is some user's
            user = auth.verify_credentials(old["email"].swapcase(), entry["password"])
            assert user is not None, entry["password"]
            assert user.id == legacy_uuid(old["id"])
            assert user.has_password
            assert auth.verify_credentials(old["email"], "x" + entry["password"]) is None
    finally:
        side.close()


# -- Subscriptions and usage --------------------------------------------------------


def test_subscriptions_keep_their_state_and_signup_trials_their_null_stripe_id(
    db: psycopg.Connection[Any],
) -> None:
    subscriptions = Subscriptions(db)
    archived = checks.archived_subscriptions.many(db)
    assert {s["status"] for s in archived} >= {"trialing", "active", "past_due", "canceled"}
    signup = [s for s in archived if s["stripe_subscription_id"] is None]
    assert signup
    for old in archived:
        if old["user_subscriptions"] > 1:
            continue  # get_for_user shows one of them; the others by Stripe id below
        found = subscriptions.get_for_user(old["user_id"])
        assert found is not None, old["id"]
        trial = old["status"] == "trialing"
        assert (
            found.user_id,
            found.stripe_customer_id,
            found.stripe_subscription_id,
            found.status,
            found.price_id,
            found.quantity,
            found.current_period_start,
            found.current_period_end,
            found.cancel_at_period_end,
            found.canceled_at,
            found.trial_start,
            found.trial_end,
        ) == (
            legacy_uuid(old["user_id"]),
            old["stripe_customer_id"],
            old["stripe_subscription_id"],
            old["status"],
            old["price_id"] or None,
            old["quantity"],
            utc(old["current_period_start"]),
            utc(old["current_period_end"]),
            old["cancel_at_period_end"],
            old["canceled_at"] and utc(old["canceled_at"]),
            utc(old["current_period_start"]) if trial else None,
            utc(old["current_period_end"]) if trial else None,
        )
    for old in archived:
        if old["stripe_subscription_id"] is not None:
            found = subscriptions.get_by_stripe_id(old["stripe_subscription_id"])
            assert found is not None
            assert found.user_id == legacy_uuid(old["user_id"])


def _app_allowance(sub: dict[str, Any]) -> tuple[int, int, int, bool]:
    """(limit, used, remaining, trialing) as the app showed them (api/user/subscription)."""
    if sub["status"] == "trialing":
        limit, used = sub["trial_limit"], sub["trial_used"]
    else:
        fresh = sub["last_usage_reset"] >= sub["current_period_start"]  # else the app resets it
        limit, used = sub["monthly_limit"], sub["used_this_month"] if fresh else 0
    return limit, used, limit - used, sub["status"] == "trialing"


def test_usage_shows_the_apps_counters_and_the_ledger_explains_them(
    db: psycopg.Connection[Any],
) -> None:
    usage = Usage(db)
    compared = set()
    for old in checks.archived_subscriptions.many(db):
        if old["status"] not in GRANTING or old["id"] == EXPIRED_TRIAL:
            continue
        allowance = usage.allowance(old["user_id"])  # the app's id of the user
        assert allowance is not None
        if old["role"] == "admin":
            assert allowance.unlimited
            continue
        got = (allowance.limit, allowance.used, allowance.remaining, allowance.trialing)
        assert got == _app_allowance(old), old["id"]
        compared.add(old["status"])
    assert compared == GRANTING
    assert checks.unbalanced_periods.many(db) == []
    ledger = checks.adopted_ledger.one(db)
    assert ledger is not None
    assert ledger["entries"] == ledger["adopted"] == ledger["periods"] > 0


def test_a_charge_after_adoption_counts_on_from_the_apps_counter(
    db: psycopg.Connection[Any],
) -> None:
    old = next(
        s
        for s in checks.archived_subscriptions.many(db)
        if s["status"] == "active" and s["role"] != "admin" and _app_allowance(s)[1] > 0
    )
    limit, used, remaining, _ = _app_allowance(old)
    usage = Usage(db)
    assert usage.consume(old["user_id"], 2, reason="search") == remaining - 2
    after = usage.allowance(old["user_id"])
    assert after is not None
    assert (after.limit, after.used) == (limit, used + 2)
    assert checks.unbalanced_periods.many(db) == []


def test_a_signup_trial_that_ended_grants_nothing_and_keeps_its_row(
    db: psycopg.Connection[Any],
) -> None:
    """trampolin's rule (docs/usage.md); the app let such a row grant its trial forever."""
    owner = first_user_id_in_archive(db, EXPIRED_TRIAL)
    allowance = Usage(db).allowance(owner)
    assert allowance is not None
    assert (allowance.limit, allowance.used, allowance.period_start) == (0, 0, None)
    found = Subscriptions(db).get_for_user(owner)
    assert found is not None
    assert found.status == "trialing"
    assert not found.stripe_subscription_id  # None, though Subscription types it str
    assert found.trial_end is not None
    assert found.trial_end < datetime.now(UTC)


def first_user_id_in_archive(db: psycopg.Connection[Any], subscription_id: str) -> str:
    return str(
        next(s for s in checks.archived_subscriptions.many(db) if s["id"] == subscription_id)[
            "user_id"
        ]
    )


# -- Searches and analyses ----------------------------------------------------------


def _stored(url: str) -> str:
    try:
        return normalize_url(url)
    except InvalidInput:
        return url


def test_analyses_resolve_by_their_old_ids_with_normalized_urls_and_results(
    db: psycopg.Connection[Any],
) -> None:
    analyses = Analyses(db)
    archived = checks.archived_analyses.many(db)
    assert {a["status"] for a in archived} == {"pending", "processing", "completed", "failed"}
    stranger = first_user_id_in_archive(db, EXPIRED_TRIAL)
    for old in archived:
        found = analyses.get(old["id"], old["user_id"])
        assert found is not None, old["id"]
        assert (found.id, found.user_id, found.status, found.results) == (
            legacy_uuid(old["id"]),
            legacy_uuid(old["user_id"]),
            old["status"],
            old["results"],
        )
        assert found.url == _stored(old["url"])
        assert (found.created_at, found.updated_at) == (
            utc(old["created_at"]),
            utc(old["updated_at"]),
        )
        if old["status"] == "completed":
            assert found.reach == old["results"]["totalReach"]
            assert found.finished_at == utc(old["updated_at"])
        assert analyses.get(old["id"], stranger) is None
    host_in_capitals = next(a for a in archived if a["url"].startswith("Shop1001."))
    assert analyses.get(host_in_capitals["id"], host_in_capitals["user_id"]).url.startswith(  # type: ignore[union-attr]
        "shop1001.example.com/"
    )
    kept = analyses.get("cmoddanalysislocalhost000", archived_user(db, 1))
    assert kept is not None
    assert kept.url == ODD_ANALYSES["cmoddanalysislocalhost000"][0]  # no host name: as it was


def archived_user(db: psycopg.Connection[Any], n: int) -> str:
    row = checks.archived_user.one(db, n=n)
    assert row is not None
    return str(row["id"])


def test_searches_list_the_analyses_that_name_them_in_order(db: psycopg.Connection[Any]) -> None:
    analyses = Analyses(db)
    archived = checks.archived_searches.many(db)
    assert any(len(s["analysis_ids"]) < s["url_count"] for s in archived)  # re-run elsewhere
    by_user: dict[str, list[dict[str, Any]]] = {}
    for old in archived:
        by_user.setdefault(old["user_id"], []).append(old)
        search = analyses.search(old["id"], old["user_id"])
        assert search is not None, old["id"]
        waiting = sum(status in ("pending", "processing") for status in old["analysis_statuses"])
        assert (search.id, search.url_count, search.total_reach, search.pending_count) == (
            legacy_uuid(old["id"]),
            old["url_count"],
            old["total_reach"],
            waiting,
        )
        assert search.status == ("pending" if waiting else old["status"])
        assert search.created_at == utc(old["created_at"])
        assert [i.analysis_id for i in search.analyses] == [
            legacy_uuid(a) for a in old["analysis_ids"]
        ]
    for user_id, searches in by_user.items():
        newest_first = sorted(searches, key=lambda s: s["created_at"], reverse=True)
        history = analyses.history(user_id)
        assert [s.id for s in history] == [legacy_uuid(s["id"]) for s in newest_first]


def test_workers_finish_what_the_app_left_pending(db: psycopg.Connection[Any]) -> None:
    analyses = Analyses(db)
    archived = checks.archived_analyses.many(db)
    unfinished = {
        legacy_uuid(a["id"]) for a in archived if a["status"] in ("pending", "processing")
    }
    claimed = analyses.claim(limit=1000)  # the processing one's claim is long stale
    assert {a.id for a in claimed} == unfinished
    for analysis in claimed:
        assert analyses.complete(analysis.id, results={"totalReach": 3}, reach=3) is not None
    for old in checks.archived_searches.many(db):
        search = analyses.search(old["id"], old["user_id"])
        assert search is not None
        assert (search.status, search.pending_count) == (
            "completed" if old["status"] != "failed" else "failed",
            0,
        )
    assert checks.unbalanced_periods.many(db) == []  # nothing was charged, nothing given back


# -- Refunds ------------------------------------------------------------------------


def test_refunds_keep_their_admin_by_id_and_email(db: psycopg.Connection[Any]) -> None:
    listed = {r.stripe_refund_id: r for r in Refunds(db).list(limit=100)}
    archived = checks.archived_refunds.many(db)
    assert len(listed) == len(archived) == 25
    for old in archived:
        refund = listed[old["stripe_refund_id"]]
        assert (
            refund.id,
            refund.stripe_charge_id,
            refund.stripe_payment_intent_id,
            refund.amount,
            refund.currency,
            refund.reason,
            refund.status,
            refund.admin_user_id,
            refund.admin_email,
            refund.customer_email,
            refund.note,
            refund.metadata,
            refund.created_at,
            refund.updated_at,
        ) == (
            legacy_uuid(old["id"]),
            old["stripe_charge_id"],
            old["stripe_payment_intent_id"],
            old["amount"],
            old["currency"],
            old["reason"],
            old["status"],
            legacy_uuid(old["admin_user_id"]),
            old["admin_email"],
            old["customer_email"],
            old["note"],
            old["metadata"],
            utc(old["created_at"]),
            utc(old["updated_at"]),
        )


# -- Old ids that left the database -------------------------------------------------


@pytest.mark.parametrize("name", ["sync", "async"])
def test_an_upload_is_found_by_its_old_id_on_both_twins(
    name: str, url: str, db: psycopg.Connection[Any]
) -> None:
    side = Side(name, url, db)  # type: ignore[arg-type]
    try:
        uploads = side.repo(CsvUploads)
        stranger = archived_user(db, 2)
        for old in checks.archived_uploads.many(db):
            upload = uploads.get(old["id"])
            assert upload is not None, old["id"]
            assert upload.user_id == legacy_uuid(old["user_id"])
            assert uploads.get(upload.id) == upload == uploads.get(str(upload.id))
            assert uploads.get(old["id"], user_id=old["user_id"]) == upload
            assert uploads.get(old["id"], user_id=stranger) is None or stranger == old["user_id"]
        odd = uploads.get(ODD_UPLOAD_ID)
        assert odd is not None
        assert len(uploads.rows(ODD_UPLOAD_ID)) == odd.total_rows
        for unknown in ("cmnosuchupload00000000000", "", "bad\x00id", "\ud800", "-1"):
            assert uploads.get(unknown) is None, unknown
    finally:
        side.close()


def test_stripe_events_naming_an_old_user_id_find_the_adopted_user(
    db: psycopg.Connection[Any],
) -> None:
    user_id = checks.user_without_billing.one(db)["id"]  # type: ignore[index]
    subscriptions = Subscriptions(db)
    created = variant(
        BASIL_CREATED,
        event_id="evt_adopted_metadata",
        customer="cus_adopted_metadata",
        subscription_id="sub_adopted_metadata",
        metadata={"user_id": user_id},
    )
    assert subscriptions.apply_stripe_event(created) == "applied"
    found = subscriptions.get_by_stripe_id("sub_adopted_metadata")
    assert found is not None
    assert found.user_id == legacy_uuid(user_id)

    other = archived_user(db, 3)
    checkout = variant(
        CHECKOUT,
        event_id="evt_adopted_checkout",
        customer="cus_adopted_checkout",
        client_reference_id=other,
    )
    assert subscriptions.apply_stripe_event(checkout) == "applied"
    later = variant(
        BASIL_CREATED,
        event_id="evt_adopted_checkout_sub",
        customer="cus_adopted_checkout",
        subscription_id="sub_adopted_checkout",
        metadata={},
    )
    assert subscriptions.apply_stripe_event(later) == "applied"
    linked = subscriptions.get_by_stripe_id("sub_adopted_checkout")
    assert linked is not None
    assert linked.user_id == legacy_uuid(other)


def test_the_next_stripe_event_of_an_adopted_subscription_applies(
    db: psycopg.Connection[Any],
) -> None:
    old = next(
        s
        for s in checks.archived_subscriptions.many(db)
        if s["stripe_subscription_id"] and s["status"] == "active" and s["user_subscriptions"] == 1
    )
    event = variant(
        BASIL_UPDATED,
        event_id="evt_adopted_update",
        customer=old["stripe_customer_id"],
        subscription_id=old["stripe_subscription_id"],
        status="past_due",
        metadata={},
    )
    subscriptions = Subscriptions(db)
    assert subscriptions.apply_stripe_event(event) == "applied"
    found = subscriptions.get_for_user(old["user_id"])
    assert found is not None
    assert (found.stripe_subscription_id, found.status) == (
        old["stripe_subscription_id"],
        "past_due",
    )
    assert found.current_period_end != utc(old["current_period_end"])  # the event's period now
