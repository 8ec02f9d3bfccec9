"""Refunds: recorded from Stripe Refund objects and from Stripe's refund events.

record() is idempotent and keeps the admin by id and e-mail; refund events go
through Subscriptions.apply_stripe_event into the event log, and record() and
the events, in any order, duplicated, or at the same time, end in one row in
the newest state (sql/queries/refunds.sql gives the order). Every repository
test runs on both twins (``side``); the refund events are real deliveries and
the two derived from them (tests/data/stripe, tests/stripe_support.py).
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tests.stripe_support import CHARGE_REFUNDED, REFUND_CREATED, REFUND_FAILED, load, signed
from tests.twins import Side
from tests.unit.test_stripe_refund import REFUND
from tests.usage_support import no_errors, run_threads, sql
from trampolin import queries
from trampolin.auth import AuthAdapter
from trampolin.cli import main
from trampolin.errors import InvalidInput, NotFound
from trampolin.refunds import Refunds
from trampolin.subscriptions import Subscriptions

R = queries.load_file(Path(__file__).parent / "sql" / "refunds.sql")
RE = "re_1Gib6ZHLwdCOCoR7VrzCnXlj"  # the refund of the three refund events


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


# -- Stripe's refund events ------------------------------------------------------------


def refund_event(
    name: str,
    refund_id: str = RE,
    *,
    event_id: str | None = None,
    created: int | None = None,
    **refund_fields: Any,
) -> dict[str, Any]:
    """A refund event of tests/data/stripe about ``refund_id``, its fields changed."""
    event = load(name)
    if event_id is not None:
        event["id"] = event_id
    elif refund_id != RE:
        event["id"] = f"{event['id']}_{refund_id}"
    if created is not None:
        event["created"] = created
    obj = event["data"]["object"]
    refunds = obj["refunds"]["data"] if obj["object"] == "charge" else [obj]
    for one in refunds:
        one.update(id=refund_id, **refund_fields)
    return event


def the_refund_object(refund_id: str = RE) -> dict[str, Any]:
    """What stripe.Refund.create returned to the admin: the refund as refund.created has it."""
    return dict(refund_event(REFUND_CREATED, refund_id)["data"]["object"])


@pytest.fixture
def events(side: Side) -> Subscriptions:
    return side.repo(Subscriptions)


def test_a_refund_event_makes_the_row_before_any_admin_records_it(
    side: Side, events: Subscriptions, admin: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    assert events.apply_stripe_event(signed(load(REFUND_CREATED))) == "applied"
    made = side.repo(Refunds).get(RE)
    assert made is not None
    assert (made.status, made.amount, made.currency) == ("succeeded", 30000000, "inr")
    assert (made.admin_user_id, made.admin_email, made.customer_email) == (None, None, None)
    recorded = events.event(load(REFUND_CREATED)["id"])
    assert recorded is not None
    assert (recorded.type, recorded.outcome) == ("refund.created", "applied")
    # The admin's record() comes after: the same row, completed.
    completed = side.repo(Refunds).record(
        the_refund_object(), admin_user_id=admin, customer_email="c@example.com", note="dup"
    )
    assert completed.id == made.id
    assert (completed.admin_email, completed.note, completed.status) == (
        "boss@example.com",
        "dup",
        "succeeded",
    )
    assert R.refund_state.one(conn, stripe_refund_id=RE) == {
        "status": "succeeded",
        "failure_reason": None,
        "last_event_id": load(REFUND_CREATED)["id"],  # the admin's equal state is not newer
        "admin_email": "boss@example.com",
    }


def test_a_real_failure_after_the_refund_succeeded(
    side: Side, events: Subscriptions, admin: uuid.UUID
) -> None:
    side.repo(Refunds).record(the_refund_object(), admin_user_id=admin, customer_email=None)
    assert events.apply_stripe_event(signed(load(REFUND_FAILED))) == "applied"
    failed = side.repo(Refunds).get(RE)
    assert failed is not None
    assert (failed.status, failed.failure_reason) == ("failed", "expired_or_canceled_card")
    assert failed.admin_email == "boss@example.com"


def _deliver_or_record(
    side: Side, admin: uuid.UUID, refund_id: str
) -> dict[str, Callable[[], str]]:
    """Each step of a refund's story, by name: the three events, and "record"."""
    events, refunds = side.repo(Subscriptions), side.repo(Refunds)

    def deliver(name: str) -> Callable[[], str]:
        event = refund_event(name, refund_id)
        return lambda: events.apply_stripe_event(event)

    def record() -> str:
        obj = the_refund_object(refund_id)
        return refunds.record(obj, admin_user_id=admin, customer_email="c@example.com").status

    steps = {name: deliver(name) for name in (REFUND_CREATED, CHARGE_REFUNDED, REFUND_FAILED)}
    return {**steps, "record": record}


def test_every_order_of_the_events_and_record_converges(
    side: Side, admin: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    """refund.created, charge.refunded, charge.refund.updated (failed) and the admin's record(),
    in all 24 orders, each event delivered twice: one row, failed, with the admin."""
    steps = [REFUND_CREATED, CHARGE_REFUNDED, REFUND_FAILED, "record"]
    for n, order in enumerate(itertools.permutations(steps)):
        refund_id = f"re_order{n}"
        do = _deliver_or_record(side, admin, refund_id)
        outcomes = [do[step]() for step in order]
        assert [do[step]() for step in order if step != "record"] == ["duplicate"] * 3
        seen_failed = order.index(REFUND_FAILED)
        for i, step in enumerate(order):
            if step == REFUND_FAILED:
                assert outcomes[i] == "applied", order
            elif step != "record" and i > seen_failed:
                assert outcomes[i] == "stale", order  # nothing moves a failed refund back
        state = R.refund_state.one(conn, stripe_refund_id=refund_id)
        assert state == {
            "status": "failed",
            "failure_reason": "expired_or_canceled_card",
            "last_event_id": f"{load(REFUND_FAILED)['id']}_{refund_id}",
            "admin_email": "boss@example.com",
        }, order
    assert R.refund_rows.one(conn) == {"n": 24}


@pytest.mark.parametrize(
    ("first", "second", "final"),
    [
        # Within a stage the newer event wins, whichever arrives first.
        (("requires_action", 100), ("pending", 200), "pending"),
        (("pending", 200), ("requires_action", 100), "pending"),
        (("canceled", 100), ("failed", 200), "failed"),
        (("failed", 200), ("canceled", 100), "failed"),
        # At the same second, the further status.
        (("pending", 100), ("requires_action", 100), "requires_action"),
        (("requires_action", 100), ("pending", 100), "requires_action"),
        (("succeeded", 100), ("pending", 100), "succeeded"),
        # The life cycle comes first: a refund never goes back to an earlier stage.
        (("succeeded", 100), ("pending", 200), "succeeded"),
        (("pending", 200), ("succeeded", 100), "succeeded"),
        (("failed", 100), ("succeeded", 200), "failed"),
        (("succeeded", 200), ("canceled", 100), "canceled"),
    ],
)
def test_the_status_moves_forward_along_the_life_cycle_then_the_events(
    events: Subscriptions,
    side: Side,
    first: tuple[str, int],
    second: tuple[str, int],
    final: str,
) -> None:
    a = refund_event(REFUND_CREATED, event_id="evt_a", created=first[1], status=first[0])
    b = refund_event(
        REFUND_FAILED, event_id="evt_b", created=second[1], status=second[0], failure_reason=None
    )
    assert events.apply_stripe_event(a) == "applied"
    events.apply_stripe_event(b)
    found = side.repo(Refunds).get(RE)
    assert found is not None
    assert found.status == final


def test_record_moves_the_status_only_to_a_later_stage_than_the_events(
    side: Side, events: Subscriptions, admin: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    refunds = side.repo(Refunds)
    assert events.apply_stripe_event(refund_event(REFUND_CREATED, status="pending")) == "applied"
    # The admin's object says succeeded: a later stage than the event's, so it holds.
    moved = refunds.record(the_refund_object(), admin_user_id=admin, customer_email=None)
    assert moved.status == "succeeded"
    assert R.refund_state.one(conn, stripe_refund_id=RE)["last_event_id"] is None  # type: ignore[index]
    # Any event of that stage or a later one is newer than the admin's state.
    assert events.apply_stripe_event(load(REFUND_FAILED)) == "applied"
    # A late refund.created (pending) moves nothing back.
    late = refund_event(REFUND_CREATED, event_id="evt_late", created=1589439900, status="pending")
    assert events.apply_stripe_event(late) == "stale"
    again = refunds.record(the_refund_object(), admin_user_id=admin, customer_email=None)
    assert (again.status, again.failure_reason) == ("failed", "expired_or_canceled_card")


def test_a_charge_with_several_refunds_makes_each_row(
    side: Side, events: Subscriptions, conn: psycopg.Connection[Any]
) -> None:
    event = load(CHARGE_REFUNDED)
    listed = event["data"]["object"]["refunds"]["data"]
    listed.append({**listed[0], "id": "re_second", "amount": 5, "status": "pending"})
    assert events.apply_stripe_event(event) == "applied"
    second = side.repo(Refunds).get("re_second")
    assert second is not None
    assert (second.amount, second.status) == (5, "pending")
    assert R.refund_rows.one(conn) == {"n": 2}
    # A newer charge.refunded in which only the second moved: applied, the first unchanged.
    newer = copy.deepcopy(event)
    newer["id"], newer["created"] = "evt_newer", event["created"] + 10
    newer["data"]["object"]["refunds"]["data"][1]["status"] = "succeeded"
    assert events.apply_stripe_event(newer) == "applied"
    stale = copy.deepcopy(event)
    stale["id"] = "evt_stale"
    assert events.apply_stripe_event(stale) == "stale"
    found = side.repo(Refunds).get("re_second")
    assert found is not None
    assert found.status == "succeeded"


def test_charge_refunded_without_its_refunds_is_recorded_and_ignored(
    events: Subscriptions, conn: psycopg.Connection[Any]
) -> None:
    event = load(CHARGE_REFUNDED)
    del event["data"]["object"]["refunds"]  # API versions since 2022-11-15
    assert events.apply_stripe_event(event) == "ignored"
    assert R.refund_rows.one(conn) == {"n": 0}
    recorded = events.event(event["id"])
    assert recorded is not None
    assert recorded.outcome == "ignored"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"status": "reversed"},
            "InvalidInput: Stripe refund re_1Gib6ZHLwdCOCoR7VrzCnXlj: unknown status",
        ),
        ({"amount": -5}, "InvalidInput: Stripe refund re_1Gib6ZHLwdCOCoR7VrzCnXlj: amount must be"),
        (
            {"currency": "rupees"},
            "InvalidInput: Stripe refund re_1Gib6ZHLwdCOCoR7VrzCnXlj: currency",
        ),
    ],
)
def test_a_malformed_refund_event_fails_writes_nothing_and_is_tried_again(
    events: Subscriptions, conn: psycopg.Connection[Any], fields: dict[str, Any], error: str
) -> None:
    bad = refund_event(REFUND_FAILED, **fields)
    assert events.apply_stripe_event(bad) == "failed"
    recorded = events.event(bad["id"])
    assert recorded is not None
    assert recorded.error is not None
    assert recorded.error.startswith(error)
    assert R.refund_rows.one(conn) == {"n": 0}
    assert events.apply_stripe_event(load(REFUND_FAILED)) == "applied"  # fixed, delivered again
    assert events.apply_stripe_event(load(REFUND_FAILED)) == "duplicate"


def test_refund_events_in_a_callers_transaction_roll_back_with_it(
    side: Side, events: Subscriptions, conn: psycopg.Connection[Any]
) -> None:
    def apply_then_undo() -> None:
        with side.transaction():
            assert events.apply_stripe_event(load(REFUND_CREATED)) == "applied"
            raise RuntimeError("the caller changes its mind")

    with pytest.raises(RuntimeError):
        apply_then_undo()
    assert R.refund_rows.one(conn) == {"n": 0}
    assert events.event(load(REFUND_CREATED)["id"]) is None


def _racer(
    side: Side, admin: uuid.UUID, refund_id: str, deliveries: list[dict[str, Any]]
) -> Callable[[int], str]:
    """Thread i < 3 delivers deliveries[i], thread 3 records the refund (own connections)."""

    def work(i: int) -> str:
        if i == 3:
            with side.connect(Refunds) as refunds:
                obj = the_refund_object(refund_id)
                return refunds.record(obj, admin_user_id=admin, customer_email=None).status
        with side.connect(Subscriptions) as subs:
            return subs.apply_stripe_event(deliveries[i])

    return work


def test_record_and_the_events_at_the_same_time_make_one_row(
    side: Side, admin: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    """record() and three events on four connections at once, ten times: one row each time,
    in the failed state, with the admin, each event recorded once."""
    for round_ in range(10):
        refund_id = f"re_race{round_}"
        deliveries = [
            refund_event(name, refund_id)
            for name in (REFUND_CREATED, CHARGE_REFUNDED, REFUND_FAILED)
        ]
        work = _racer(side, admin, refund_id, deliveries)
        results = run_threads(4, work)
        no_errors(results)
        assert results[2] == "applied"  # the failure is the newest event
        assert set(results[:2]) <= {"applied", "stale"}
        assert R.refund_state.one(conn, stripe_refund_id=refund_id) == {
            "status": "failed",
            "failure_reason": "expired_or_canceled_card",
            "last_event_id": deliveries[2]["id"],
            "admin_email": "boss@example.com",
        }
    assert R.refund_rows.one(conn) == {"n": 10}
