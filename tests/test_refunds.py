"""Refunds: recorded from Stripe Refund objects, idempotent, admin kept by id and e-mail."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tests.twins import Side
from tests.unit.test_stripe_refund import REFUND
from tests.usage_support import no_errors, run_threads, sql
from trampolin.auth import AuthAdapter
from trampolin.cli import main
from trampolin.errors import InvalidInput, NotFound
from trampolin.refunds import Refunds


def refund(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(REFUND)
    data.update(changes)
    return data


@pytest.fixture
def admin(conn: psycopg.Connection[Any], make_user: Callable[..., uuid.UUID]) -> uuid.UUID:
    user = make_user("boss@example.com")
    AuthAdapter(conn).set_role(user, "admin")
    return user


def test_record_keeps_what_the_app_kept(side: Side, admin: uuid.UUID) -> None:
    recorded = side.repo(Refunds).record(
        refund(reason="requested_by_customer", metadata={"admin_note": "double charge"}),
        admin_user_id=admin,
        customer_email="customer@example.com",
        note="  double charge  ",
    )
    assert recorded.stripe_refund_id == REFUND["id"]
    assert (recorded.stripe_charge_id, recorded.stripe_payment_intent_id) == (
        REFUND["charge"],
        REFUND["payment_intent"],
    )
    assert (recorded.amount, recorded.currency, recorded.status) == (1000, "usd", "succeeded")
    assert recorded.reason == "requested_by_customer"
    assert (recorded.admin_user_id, recorded.admin_email) == (admin, "boss@example.com")
    assert (recorded.customer_email, recorded.note) == ("customer@example.com", "double charge")
    assert recorded.metadata == {"admin_note": "double charge"}
    assert recorded.stripe_created is not None
    assert side.repo(Refunds).get(REFUND["id"]) == recorded
    assert side.repo(Refunds).get("re_unknown") is None


def test_recording_again_keeps_one_row_and_the_first_admin(
    side: Side, admin: uuid.UUID, make_user: Callable[..., uuid.UUID], conn: psycopg.Connection[Any]
) -> None:
    refunds = side.repo(Refunds)
    first = refunds.record(REFUND, admin_user_id=admin, customer_email=None)
    other = make_user("other@example.com")
    again = refunds.record(REFUND, admin_user_id=other, customer_email="c@example.com", note="n")
    assert again.id == first.id
    assert (again.admin_user_id, again.admin_email) == (admin, "boss@example.com")
    assert (again.customer_email, again.note) == ("c@example.com", "n")  # filled in, once
    assert sql.refund_count.one(conn, stripe_refund_id=REFUND["id"]) == {"n": 1}


def test_deleting_the_admin_keeps_the_audit(
    side: Side, admin: uuid.UUID, conn: psycopg.Connection[Any], make_user: Callable[..., uuid.UUID]
) -> None:
    refunds = side.repo(Refunds)
    refunds.record(REFUND, admin_user_id=admin, customer_email="c@example.com")
    sql.delete_user.exec(conn, id=admin)  # the app's foreign key made this impossible
    [kept] = refunds.list()
    assert (kept.admin_user_id, kept.admin_email) == (None, "boss@example.com")
    again = refunds.record(REFUND, admin_user_id=make_user(), customer_email=None)
    assert (again.admin_user_id, again.admin_email) == (None, "boss@example.com")


def test_a_status_never_moves_back(side: Side, admin: uuid.UUID) -> None:
    refunds = side.repo(Refunds)
    assert (
        refunds.record(refund(status="pending"), admin_user_id=admin, customer_email=None).status
        == "pending"
    )
    assert refunds.record(REFUND, admin_user_id=admin, customer_email=None).status == "succeeded"
    stale = refunds.record(refund(status="pending"), admin_user_id=admin, customer_email=None)
    assert stale.status == "succeeded"
    failed = refunds.record(
        refund(status="failed", failure_reason="lost_or_stolen_card"),
        admin_user_id=admin,
        customer_email=None,
    )
    assert (failed.status, failed.failure_reason) == ("failed", "lost_or_stolen_card")


def test_record_completes_a_row_an_event_made_and_keeps_its_status(
    side: Side, admin: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    sql.insert_refund_from_event.exec(
        conn, stripe_refund_id=REFUND["id"], amount=1000, status="failed"
    )
    recorded = side.repo(Refunds).record(
        REFUND, admin_user_id=admin, customer_email="c@example.com"
    )
    assert recorded.status == "failed"  # the event is newer than the admin's snapshot
    assert recorded.admin_email == "boss@example.com"
    assert recorded.stripe_charge_id == REFUND["charge"]


def test_concurrent_records_make_one_row(
    side: Side, admin: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    def work(_: int) -> uuid.UUID:
        with side.connect(Refunds) as refunds:
            return refunds.record(REFUND, admin_user_id=admin, customer_email=None).id

    results = run_threads(6, work)
    no_errors(results)
    assert len(set(results)) == 1
    assert sql.refund_count.one(conn, stripe_refund_id=REFUND["id"]) == {"n": 1}


def test_list_is_newest_first(side: Side, admin: uuid.UUID) -> None:
    refunds = side.repo(Refunds)
    for i in range(3):
        refunds.record(refund(id=f"re_{i}"), admin_user_id=admin, customer_email=None)
    assert [r.stripe_refund_id for r in refunds.list()] == ["re_2", "re_1", "re_0"]
    assert [r.stripe_refund_id for r in refunds.list(limit=1)] == ["re_2"]
    for bad in (0, 1001, "5"):
        with pytest.raises(InvalidInput, match="limit must be"):
            refunds.list(limit=bad)  # type: ignore[arg-type]


def test_bad_input_writes_nothing(side: Side, admin: uuid.UUID) -> None:
    refunds = side.repo(Refunds)
    with pytest.raises(NotFound, match="no user with id"):
        refunds.record(REFUND, admin_user_id=uuid.uuid4(), customer_email=None)
    with pytest.raises(NotFound, match="no user with id 'nope'"):
        refunds.record(REFUND, admin_user_id="nope", customer_email=None)
    bad_records: list[tuple[dict[str, Any], str]] = [
        ({"customer_email": "x" * 321}, "customer_email is longer than 320"),
        ({"customer_email": 5}, "customer_email must be a string"),
        ({"note": "a\x00"}, "NUL"),
        ({"note": "x" * 2001}, "note is longer than 2000"),
    ]
    for kwargs, message in bad_records:
        args: dict[str, Any] = {"customer_email": None, **kwargs}
        with pytest.raises(InvalidInput, match=message):
            refunds.record(REFUND, admin_user_id=admin, **args)
    with pytest.raises(InvalidInput, match="not a Stripe refund"):
        refunds.record({"object": "charge"}, admin_user_id=admin, customer_email=None)
    assert refunds.list() == []


def test_cli_lists_refunds(
    db_url: str, side: Side, admin: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    side.repo(Refunds).record(REFUND, admin_user_id=admin, customer_email="c@example.com")
    sql.delete_user.exec(conn, id=admin)
    result = CliRunner().invoke(main, ["--database-url", db_url, "refunds", "list"])
    assert result.exit_code == 0, result.output
    [line] = result.output.splitlines()
    assert line.split("\t")[1:] == [
        REFUND["id"],
        "10.00 USD",
        "succeeded",
        "c@example.com",
        "boss@example.com (deleted)",
    ]
    bad = CliRunner().invoke(main, ["--database-url", db_url, "refunds", "list", "--limit", "0"])
    assert bad.exit_code == 1
    assert bad.output.startswith("error: limit must be between 1 and 1000")
