"""trampolin.subscriptions: the event log, order-safe sync, linking, replay, the CLI.

Every repository test runs on both twins (the ``side`` fixture): Subscriptions
on a sync connection and AsyncSubscriptions on an async one; the concurrency
tests on real threads, each with a connection of its own (``side.connect``).
Payloads are real Stripe deliveries (tests/stripe_support.py); reading them is
tested without a database in tests/unit/test_stripe_payload.py.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tests.stripe_support import (
    BASIL_CREATED,
    BASIL_DELETED,
    BASIL_UPDATED,
    CHECKOUT,
    DATA,
    INVOICE_FAILED,
    INVOICE_PAID,
    PRE_UPDATED,
    SECRET,
    customer_of,
    load,
    raw,
    sign,
    signed,
    sub_id_of,
    variant,
)
from tests.support import run_cli
from tests.twins import Side
from trampolin import queries
from trampolin.cli import main
from trampolin.errors import Conflict, InvalidInput, NotFound
from trampolin.subscriptions import Subscriptions, parse_webhook
from trampolin.usage import Usage

T = queries.load_file(Path(__file__).parent / "sql" / "billing.sql")

MakeUser = Callable[..., uuid.UUID]


def invoice_finalized(**changes: Any) -> dict[str, Any]:
    """An event of a type that is recorded and ignored: a real invoice, another type."""
    return variant(INVOICE_PAID, event_type="invoice.finalized", **changes)


@pytest.fixture
def subs(side: Side) -> Subscriptions:
    """The repository under test: the sync class, or its async twin."""
    return side.repo(Subscriptions)


@pytest.fixture
def linked_user(conn: psycopg.Connection[Any], make_user: MakeUser) -> Callable[[str], uuid.UUID]:
    """A new user linked to that customer (set up on the sync side)."""

    def make(customer: str) -> uuid.UUID:
        user = make_user()
        assert Subscriptions(conn).link_customer(user, customer) == {}
        return user

    return make


# -- applying snapshots: both API shapes ----------------------------------------


def test_basil_created_reads_the_period_from_the_item(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user(customer_of(BASIL_CREATED))
    payload = raw(BASIL_CREATED)
    assert subs.apply_stripe_event(parse_webhook(payload, sign(payload), SECRET)) == "applied"
    sub = subs.get_by_stripe_id(sub_id_of(BASIL_CREATED))
    assert sub is not None
    assert sub.user_id == user
    assert sub.stripe_customer_id == "cus_StrDyyZ2GNZ3vZ"
    assert sub.status == "incomplete"
    assert sub.price_id == "price_1Ry3VCLf1iznKy11PtmX3JJE"
    assert (sub.quantity, sub.interval, sub.interval_count) == (1, "day", 1)
    assert sub.current_period_start is not None
    assert sub.current_period_end is not None
    assert int(sub.current_period_start.timestamp()) == 1756364719
    assert int(sub.current_period_end.timestamp()) == 1756451119
    assert sub.cancel_at_period_end is False
    assert sub.canceled_at is None
    assert sub.ended_at is None
    assert sub.trial_end is None
    assert subs.has_access(user) is False  # incomplete: the first invoice is not paid


def test_pre_basil_updated_reads_the_period_from_the_subscription(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user(customer_of(PRE_UPDATED))
    payload = raw(PRE_UPDATED)
    assert subs.apply_stripe_event(parse_webhook(payload, sign(payload), SECRET)) == "applied"
    sub = subs.get_for_user(user)
    assert sub is not None
    assert sub.stripe_subscription_id == "sub_1Mqqb6Lt4dXK03v50OA219Ya"
    assert sub.status == "active"
    assert (sub.price_id, sub.interval, sub.quantity) == (
        "price_1Mqqb5Lt4dXK03v5cK9prani",
        "month",
        1,
    )
    assert sub.current_period_start is not None
    assert sub.current_period_end is not None
    assert int(sub.current_period_start.timestamp()) == 1680668814
    assert int(sub.current_period_end.timestamp()) == 1683260814
    assert sub.trial_start is not None
    assert int(sub.trial_start.timestamp()) == 1680064014
    assert subs.has_access(user) is True


def test_basil_updated_then_deleted(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user(customer_of(BASIL_UPDATED))
    assert subs.apply_stripe_event(load(BASIL_UPDATED)) == "applied"
    sub = subs.get_for_user(user)
    assert sub is not None
    assert sub.current_period_end is not None
    assert int(sub.current_period_end.timestamp()) == 1759005442
    assert subs.has_access(user)
    assert subs.apply_stripe_event(load(BASIL_DELETED)) == "applied"
    sub = subs.get_for_user(user)
    assert sub is not None
    assert sub.status == "canceled"
    assert sub.ended_at is not None
    assert sub.canceled_at is not None
    assert not subs.has_access(user)


def test_deleted_means_canceled_whatever_the_status_says(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user(customer_of(BASIL_DELETED))
    assert subs.apply_stripe_event(variant(BASIL_DELETED, status="active")) == "applied"
    assert not subs.has_access(user)


def test_stripe_object_and_dict_are_the_same_event(subs: Subscriptions) -> None:
    payload = raw(BASIL_UPDATED)
    as_object = parse_webhook(payload, sign(payload), SECRET)
    assert subs.apply_stripe_event(as_object) == "unmatched"
    assert subs.apply_stripe_event(json.loads(payload)) == "duplicate"
    assert subs.event_payload(str(as_object["id"])) == json.loads(payload)


# -- duplicates, stale and out-of-order deliveries --------------------------------


def test_a_second_delivery_is_a_duplicate_and_changes_nothing(
    subs: Subscriptions, conn: psycopg.Connection[Any], linked_user: Callable[[str], uuid.UUID]
) -> None:
    linked_user(customer_of(BASIL_UPDATED))
    assert subs.apply_stripe_event(load(BASIL_UPDATED)) == "applied"
    before = T.subscription_row.one(conn, stripe_subscription_id=sub_id_of(BASIL_UPDATED))
    assert subs.apply_stripe_event(load(BASIL_UPDATED)) == "duplicate"
    assert subs.apply_stripe_event(variant(BASIL_UPDATED, status="past_due")) == "duplicate"
    after = T.subscription_row.one(conn, stripe_subscription_id=sub_id_of(BASIL_UPDATED))
    assert before == after
    assert T.count_events.one(conn) == {"n": 1}
    assert [e.outcome for e in subs.events()] == ["applied"]


def test_an_older_event_is_stale(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user(customer_of(BASIL_UPDATED))
    newer = load(BASIL_UPDATED)
    older = variant(
        BASIL_UPDATED, event_id="evt_older", created=newer["created"] - 60, status="past_due"
    )
    assert subs.apply_stripe_event(newer) == "applied"
    assert subs.apply_stripe_event(older) == "stale"
    sub = subs.get_for_user(user)
    assert sub is not None
    assert sub.status == "active"
    assert {e.id: e.outcome for e in subs.events()} == {
        newer["id"]: "applied",
        "evt_older": "stale",
    }


def _lifecycle(customer: str, sub_id: str, start: int) -> list[dict[str, Any]]:
    return [
        variant(
            BASIL_CREATED,
            event_id=f"evt_{sub_id}_a",
            created=start,
            customer=customer,
            subscription_id=sub_id,
        ),
        variant(
            BASIL_UPDATED,
            event_id=f"evt_{sub_id}_b",
            created=start + 10,
            customer=customer,
            subscription_id=sub_id,
        ),
        variant(
            BASIL_UPDATED,
            event_id=f"evt_{sub_id}_c",
            created=start + 20,
            customer=customer,
            subscription_id=sub_id,
            cancel_at_period_end=True,
        ),
        variant(
            BASIL_DELETED,
            event_id=f"evt_{sub_id}_d",
            created=start + 30,
            customer=customer,
            subscription_id=sub_id,
        ),
    ]


@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "in-transaction"])
def test_every_delivery_order_converges_to_the_newest_state(
    subs: Subscriptions,
    side: Side,
    linked_user: Callable[[str], uuid.UUID],
    in_transaction: bool,
) -> None:
    """Each delivery is a transaction of its own, or a savepoint in the caller's."""
    customer = "cus_order"
    linked_user(customer)
    for n, order in enumerate(itertools.permutations(range(4))):
        sub_id = f"sub_order{n}"
        events = _lifecycle(customer, sub_id, 1_700_000_000)
        with side.transaction() if in_transaction else contextlib.nullcontext():
            outcomes = [subs.apply_stripe_event(events[i]) for i in order]
        assert set(outcomes) <= {"applied", "stale"}
        sub = subs.get_by_stripe_id(sub_id)
        assert sub is not None
        assert sub.status == "canceled"
        assert outcomes[order.index(3)] == "applied"  # the newest is always applied


@pytest.mark.parametrize(
    ("first", "second", "winner"),
    [
        (BASIL_CREATED, BASIL_UPDATED, BASIL_UPDATED),
        (BASIL_UPDATED, BASIL_CREATED, BASIL_UPDATED),
        (BASIL_DELETED, BASIL_UPDATED, BASIL_DELETED),
        (BASIL_UPDATED, BASIL_DELETED, BASIL_DELETED),
        (BASIL_CREATED, BASIL_DELETED, BASIL_DELETED),
    ],
)
def test_same_second_ties_follow_the_lifecycle(
    subs: Subscriptions,
    linked_user: Callable[[str], uuid.UUID],
    first: str,
    second: str,
    winner: str,
) -> None:
    """created < updated < deleted when Stripe stamps them with the same second."""
    customer = "cus_tie"
    linked_user(customer)

    def event(name: str) -> dict[str, Any]:
        return variant(name, created=1_700_000_000, customer=customer, subscription_id="sub_tie")

    subs.apply_stripe_event(event(first))
    subs.apply_stripe_event(event(second))
    sub = subs.get_by_stripe_id("sub_tie")
    assert sub is not None
    assert sub.status == {BASIL_UPDATED: "active", BASIL_DELETED: "canceled"}[winner]


def test_same_second_same_type_ties_go_to_the_greater_event_id(
    subs: Subscriptions, conn: psycopg.Connection[Any], linked_user: Callable[[str], uuid.UUID]
) -> None:
    customer = "cus_tie2"
    linked_user(customer)
    for sub_id, ids in (("sub_x", ("evt_A", "evt_B")), ("sub_y", ("evt_D", "evt_C"))):
        for event_id in ids:
            subs.apply_stripe_event(
                variant(
                    BASIL_UPDATED,
                    event_id=f"{event_id}_{sub_id}",
                    created=1_700_000_000,
                    customer=customer,
                    subscription_id=sub_id,
                )
            )
    x = T.subscription_row.one(conn, stripe_subscription_id="sub_x")
    y = T.subscription_row.one(conn, stripe_subscription_id="sub_y")
    assert x is not None
    assert y is not None
    assert (x["last_event_id"], y["last_event_id"]) == ("evt_B_sub_x", "evt_D_sub_y")


def test_the_rank_is_stored_with_each_event_and_backfilled_by_its_migration(
    direct_db_url: str, conn: psycopg.Connection[Any], linked_user: Callable[[str], uuid.UUID]
) -> None:
    """A migration test: the sync side is enough."""
    subs = Subscriptions(conn)
    from trampolin.migration_files import read_migration_files
    from trampolin.migrations import Migrator

    customer = "cus_rank3"
    linked_user(customer)
    kinds = {"sub_r0": BASIL_CREATED, "sub_r1": BASIL_UPDATED, "sub_r2": BASIL_DELETED}
    for n, (sub_id, name) in enumerate(kinds.items()):
        event = variant(name, event_id=f"evt_r{n}", customer=customer, subscription_id=sub_id)
        assert subs.apply_stripe_event(event) == "applied"

    def ranks() -> dict[str, tuple[int, Any]]:
        rows = {s: T.subscription_row.one(conn, stripe_subscription_id=s) for s in kinds}
        return {s: (r["last_event_rank"], r["updated_at"]) for s, r in rows.items() if r}

    before = ranks()
    assert {s: rank for s, (rank, _) in before.items()} == {"sub_r0": 0, "sub_r1": 1, "sub_r2": 2}
    migrator = Migrator(direct_db_url)  # migrations need a direct connection
    ids = [m.id for m in read_migration_files()]
    since_0006 = ids[ids.index("0006_subscription_event_rank") :]  # and those after it
    assert [m.id for m in migrator.rollback(count=len(since_0006))] == since_0006[::-1]
    assert [m.id for m in migrator.apply()] == since_0006
    assert ranks() == before  # same ranks, and updated_at untouched by the backfill


# -- which user: unmatched, link_customer, checkout, metadata ---------------------


@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "in-transaction"])
def test_unmatched_is_kept_and_replayed_by_link_customer(
    subs: Subscriptions, side: Side, make_user: MakeUser, in_transaction: bool
) -> None:
    created, updated = load(BASIL_CREATED), load(BASIL_UPDATED)
    updated["data"]["object"]["customer"] = created["data"]["object"]["customer"]
    updated["data"]["object"]["id"] = created["data"]["object"]["id"]
    with side.transaction() if in_transaction else contextlib.nullcontext():
        assert subs.apply_stripe_event(updated) == "unmatched"
        assert subs.apply_stripe_event(created) == "unmatched"
    assert subs.get_by_stripe_id(sub_id_of(BASIL_CREATED)) is None
    assert {e.id for e in subs.events("unmatched")} == {created["id"], updated["id"]}

    user = make_user()
    replayed = subs.link_customer(user, "cus_StrDyyZ2GNZ3vZ")
    # Oldest first: created is applied, then updated (newer) wins.
    assert replayed == {created["id"]: "applied", updated["id"]: "applied"}
    assert subs.events("unmatched") == []
    sub = subs.get_for_user(user)
    assert sub is not None
    assert sub.status == "active"
    assert subs.has_access(user)
    assert subs.link_customer(user, "cus_StrDyyZ2GNZ3vZ") == {}  # again: nothing to do


def test_an_unmatched_event_that_fails_on_replay_is_failed(
    subs: Subscriptions, make_user: MakeUser
) -> None:
    event = variant(BASIL_UPDATED, status="bogus")
    assert subs.apply_stripe_event(event) == "unmatched"  # nothing written, nothing checked
    assert subs.link_customer(make_user(), customer_of(BASIL_UPDATED)) == {event["id"]: "failed"}
    recorded = subs.event(event["id"])
    assert recorded is not None
    assert recorded.error is not None
    assert "subscriptions_status_check" in recorded.error


def test_checkout_links_the_customer_and_replays(
    subs: Subscriptions, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    user = make_user()
    customer = customer_of(CHECKOUT)
    early = variant(PRE_UPDATED, customer=customer)  # arrived before the checkout event
    assert subs.apply_stripe_event(early) == "unmatched"

    checkout = variant(CHECKOUT, client_reference_id=str(user))
    assert subs.apply_stripe_event(checkout) == "applied"
    assert T.user_customer.one(conn, user_id=user) == {"stripe_customer_id": customer}
    event = subs.event(early["id"])
    assert event is not None
    assert event.outcome == "applied"
    assert subs.has_access(user)
    assert subs.apply_stripe_event(checkout) == "duplicate"


def test_checkout_with_metadata_user_id(
    subs: Subscriptions, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    user = make_user()
    checkout = variant(CHECKOUT, client_reference_id=None, metadata={"user_id": str(user)})
    assert subs.apply_stripe_event(checkout) == "applied"
    assert T.user_customer.one(conn, user_id=user) == {"stripe_customer_id": customer_of(CHECKOUT)}


def test_checkout_prefers_the_client_reference_to_the_metadata(
    subs: Subscriptions, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    first, second = make_user(), make_user()
    checkout = variant(CHECKOUT, client_reference_id=str(first), metadata={"user_id": str(second)})
    assert subs.apply_stripe_event(checkout) == "applied"
    assert T.user_customer.one(conn, user_id=first) == {"stripe_customer_id": customer_of(CHECKOUT)}
    assert T.user_customer.one(conn, user_id=second) == {"stripe_customer_id": None}


def test_checkout_passes_over_a_named_id_that_is_no_user(
    subs: Subscriptions, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    user = make_user()
    checkout = variant(
        CHECKOUT, client_reference_id=str(uuid.uuid4()), metadata={"user_id": str(user)}
    )
    assert subs.apply_stripe_event(checkout) == "applied"
    assert T.user_customer.one(conn, user_id=user) == {"stripe_customer_id": customer_of(CHECKOUT)}


def test_checkout_naming_nobody_is_unmatched_until_the_customer_is_linked(
    subs: Subscriptions, make_user: MakeUser
) -> None:
    checkout = load(CHECKOUT)  # client_reference_id is the app's cuid, not a user id here
    assert subs.apply_stripe_event(checkout) == "unmatched"
    user = make_user()
    assert subs.link_customer(user, customer_of(CHECKOUT)) == {checkout["id"]: "ignored"}


def test_checkout_for_a_customer_of_another_user_fails_and_is_recorded(
    subs: Subscriptions,
    conn: psycopg.Connection[Any],
    linked_user: Callable[[str], uuid.UUID],
    make_user: MakeUser,
) -> None:
    owner = linked_user(customer_of(CHECKOUT))
    other = make_user()
    assert subs.apply_stripe_event(variant(CHECKOUT, client_reference_id=str(other))) == "failed"
    event = subs.event(load(CHECKOUT)["id"])
    assert event is not None
    assert event.outcome == "failed"
    assert event.error is not None
    assert "already linked" in event.error
    assert T.user_customer.one(conn, user_id=other) == {"stripe_customer_id": None}
    assert T.user_customer.one(conn, user_id=owner) == {"stripe_customer_id": customer_of(CHECKOUT)}


def test_checkout_without_customer_is_ignored(subs: Subscriptions) -> None:
    event = load(CHECKOUT)
    event["data"]["object"]["customer"] = None
    assert subs.apply_stripe_event(event) == "ignored"


def test_subscription_metadata_user_id_matches_without_a_link(
    subs: Subscriptions, make_user: MakeUser
) -> None:
    user = make_user()
    event = variant(BASIL_UPDATED, metadata={"user_id": str(user)})
    assert subs.apply_stripe_event(event) == "applied"
    assert subs.has_access(user)


@pytest.mark.parametrize("user_id", ["not-a-uuid", "8d0f5bd0-8f5c-4a2f-9d7e-0c5a3b1f2e4d", ""])
def test_metadata_naming_no_user_is_unmatched(subs: Subscriptions, user_id: str) -> None:
    event = variant(BASIL_UPDATED, metadata={"user_id": user_id})
    assert subs.apply_stripe_event(event) == "unmatched"


def test_link_customer_refuses_bad_input(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID], make_user: MakeUser
) -> None:
    linked_user("cus_taken")
    with pytest.raises(Conflict, match="cus_taken"):
        subs.link_customer(make_user(), "cus_taken")
    with pytest.raises(NotFound):
        subs.link_customer(uuid.uuid4(), "cus_new")
    with pytest.raises(NotFound):  # no user has that (Prisma-era) id
        subs.link_customer("nope", "cus_new")
    with pytest.raises(InvalidInput):
        subs.link_customer(make_user(), "")


def test_events_of_an_old_customer_still_reach_its_user(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user(customer_of(BASIL_UPDATED))
    assert subs.apply_stripe_event(load(BASIL_UPDATED)) == "applied"
    subs.link_customer(user, "cus_newer")  # e.g. a second checkout made a new customer
    assert subs.apply_stripe_event(load(BASIL_DELETED)) == "applied"
    sub = subs.get_by_stripe_id(sub_id_of(BASIL_DELETED))
    assert sub is not None
    assert (sub.user_id, sub.status) == (user, "canceled")


def test_link_customer_moves_a_user_to_a_new_customer(
    subs: Subscriptions, conn: psycopg.Connection[Any], linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user("cus_first")
    assert subs.link_customer(user, "cus_second") == {}
    assert T.user_customer.one(conn, user_id=user) == {"stripe_customer_id": "cus_second"}


# -- access and the current subscription ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "access"),
    [
        ("active", True),
        ("trialing", True),
        ("past_due", True),
        ("incomplete", False),
        ("incomplete_expired", False),
        ("unpaid", False),
        ("paused", False),
        ("canceled", False),
    ],
)
def test_has_access_by_status(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID], status: str, access: bool
) -> None:
    user = linked_user(customer_of(BASIL_UPDATED))
    assert subs.apply_stripe_event(variant(BASIL_UPDATED, status=status)) == "applied"
    assert subs.has_access(user) is access
    sub = subs.get_for_user(user)
    assert sub is not None
    assert sub.has_access is access


def test_get_for_user_prefers_a_live_subscription(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user("cus_two")
    live = variant(PRE_UPDATED, customer="cus_two", subscription_id="sub_live")
    ended = variant(
        BASIL_DELETED, customer="cus_two", subscription_id="sub_ended", event_id="evt_ended"
    )
    assert subs.apply_stripe_event(live) == "applied"
    assert subs.apply_stripe_event(ended) == "applied"  # newer, and its period ends later
    current = subs.get_for_user(user)
    assert current is not None
    assert current.stripe_subscription_id == "sub_live"


def test_unknown_ids_give_none(subs: Subscriptions, make_user: MakeUser) -> None:
    assert subs.get_for_user(make_user()) is None
    assert subs.get_for_user(uuid.uuid4()) is None
    assert subs.get_for_user("not-a-uuid") is None
    assert subs.get_by_stripe_id("sub_nope") is None
    assert subs.has_access(uuid.uuid4()) is False
    assert subs.has_access("not-a-uuid") is False
    assert subs.event("evt_nope") is None
    assert subs.event_payload("evt_nope") is None
    for not_an_id in (123, None, b"x"):
        with pytest.raises(InvalidInput, match="a user id must be a UUID or a string"):
            subs.get_for_user(not_an_id)  # type: ignore[arg-type]


# -- other events, bad input -----------------------------------------------------------


def test_unknown_types_are_ignored(subs: Subscriptions) -> None:
    event = {"id": "evt_x", "type": "payout.paid", "created": 1, "data": {"object": {"id": "po_1"}}}
    assert subs.apply_stripe_event(event) == "ignored"
    assert subs.apply_stripe_event({**event, "id": "evt_y", "data": None}) == "ignored"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"id": "evt_1", "type": "x", "created": "yesterday"},
        None,
        {"id": "evt_1", "type": "x", "created": 1, "data": {"amount": float("nan")}},
    ],
)
def test_not_an_event_is_invalid_input_and_not_recorded(subs: Subscriptions, event: Any) -> None:
    """Every kind of non-event: tests/unit/test_stripe_payload.py."""
    with pytest.raises(InvalidInput):
        subs.apply_stripe_event(event)
    assert subs.events() == []


@pytest.mark.parametrize(
    "change",
    [
        {"status": "bogus"},
        {"customer": None},
        {"current_period_end": "tomorrow"},
        {"object": "invoice"},
        {"items": {"object": "list", "data": [{"quantity": -1}]}},
    ],
)
def test_a_malformed_snapshot_fails_and_is_recorded(
    subs: Subscriptions,
    conn: psycopg.Connection[Any],
    linked_user: Callable[[str], uuid.UUID],
    change: dict[str, Any],
) -> None:
    linked_user(customer_of(PRE_UPDATED))
    event = load(PRE_UPDATED)
    event["data"]["object"].update(change)
    assert subs.apply_stripe_event(event) == "failed"
    recorded = subs.event(event["id"])
    assert recorded is not None
    assert recorded.outcome == "failed"
    assert recorded.error
    assert T.count_subscriptions.one(conn) == {"n": 0}


@pytest.mark.parametrize("created", [100_000_000_000_000, -100_000_000_000_000])
def test_an_out_of_range_created_is_invalid_input(
    subs: Subscriptions, conn: psycopg.Connection[Any], created: int
) -> None:
    with pytest.raises(InvalidInput, match="'created'"):
        subs.apply_stripe_event(variant(BASIL_UPDATED, created=created))
    assert T.count_events.one(conn) == {"n": 0}


@pytest.mark.parametrize(
    "field", ["current_period_end", "cancel_at", "canceled_at", "ended_at", "trial_end"]
)
def test_an_out_of_range_subscription_timestamp_fails_naming_the_field(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID], field: str
) -> None:
    linked_user(customer_of(BASIL_UPDATED))
    event = variant(BASIL_UPDATED)
    event["data"]["object"][field] = 100_000_000_000_000
    assert subs.apply_stripe_event(event) == "failed"
    recorded = subs.event(event["id"])
    assert recorded is not None
    assert recorded.error is not None
    assert field in recorded.error
    assert recorded.error.startswith("InvalidInput")


def test_nul_characters_are_invalid_input_naming_the_argument(
    subs: Subscriptions, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    user = make_user()
    with pytest.raises(InvalidInput, match="stripe_customer_id"):
        subs.link_customer(user, "cus\x00")
    with pytest.raises(InvalidInput, match="stripe_subscription_id"):
        subs.get_by_stripe_id("a\x00")
    with pytest.raises(InvalidInput, match="event_id"):
        subs.event("evt\x00")
    with pytest.raises(InvalidInput, match="event_id"):
        subs.event_payload("evt\x00")
    with pytest.raises(InvalidInput, match="stripe_subscription_id"):
        subs.get_by_stripe_id("\ud800")
    with pytest.raises(InvalidInput, match="id"):
        subs.apply_stripe_event(variant(BASIL_UPDATED, event_id="evt\x00"))
    with pytest.raises(InvalidInput, match="NUL"):
        subs.apply_stripe_event(variant(BASIL_UPDATED, metadata={"note": "a\x00b"}))
    assert T.count_events.one(conn) == {"n": 0}
    # An escaped backslash before "u0000" is no NUL character.
    assert subs.apply_stripe_event(variant(BASIL_UPDATED, metadata={"note": "a\\u0000b"})) == (
        "unmatched"
    )


@pytest.mark.parametrize("limit", [0, -1, 10_001, 10**20, True, 1.5])
def test_events_refuses_a_bad_limit(subs: Subscriptions, limit: Any) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        subs.events(limit=limit)


@pytest.mark.parametrize("limit", [10**20, 2**63, True])
def test_replay_refuses_a_limit_beyond_bigint(subs: Subscriptions, limit: Any) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        subs.replay(limit=limit)


def test_events_accepts_the_largest_limit(subs: Subscriptions) -> None:
    assert subs.events(limit=10_000) == []
    assert subs.replay(limit=2**63 - 1) == {}


# -- failures and replay ----------------------------------------------------------------


@pytest.fixture
def broken(conn: psycopg.Connection[Any]) -> Iterator[Callable[[], None]]:
    """Writes to subscriptions fail until the returned function is called."""
    T.break_subscriptions.exec(conn)
    state = {"broken": True}

    def repair() -> None:
        T.repair_subscriptions.exec(conn)
        state["broken"] = False

    yield repair
    if state["broken"]:
        repair()


def test_a_failing_effect_is_rolled_back_and_recorded(
    subs: Subscriptions,
    conn: psycopg.Connection[Any],
    linked_user: Callable[[str], uuid.UUID],
    broken: Callable[[], None],
) -> None:
    user = linked_user(customer_of(BASIL_UPDATED))
    event = load(BASIL_UPDATED)
    assert subs.apply_stripe_event(event) == "failed"
    recorded = subs.event(event["id"])
    assert recorded is not None
    assert recorded.outcome == "failed"
    assert recorded.error is not None
    assert "simulated failure" in recorded.error
    assert subs.get_for_user(user) is None
    assert subs.apply_stripe_event(event) == "failed"  # still broken: tried again, failed again
    broken()
    assert subs.apply_stripe_event(event) == "applied"  # Stripe's retry heals it
    assert subs.apply_stripe_event(event) == "duplicate"
    recorded = subs.event(event["id"])
    assert recorded is not None
    assert recorded.error is None
    assert recorded.outcome == "applied"


def test_replay_failed(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID], broken: Callable[[], None]
) -> None:
    user = linked_user(customer_of(BASIL_UPDATED))
    events = [load(BASIL_UPDATED), load(BASIL_DELETED), invoice_finalized()]
    assert [subs.apply_stripe_event(e) for e in events] == ["failed", "failed", "ignored"]
    assert subs.replay("failed") == {events[0]["id"]: "failed", events[1]["id"]: "failed"}
    broken()
    seen: list[tuple[str, str]] = []
    replayed = subs.replay("failed", on_event=lambda i, o: seen.append((i, o)))
    assert replayed == {events[0]["id"]: "applied", events[1]["id"]: "applied"}
    assert seen == list(replayed.items())
    assert subs.replay("failed") == {}
    sub = subs.get_for_user(user)
    assert sub is not None
    assert sub.status == "canceled"


def test_a_failure_inside_a_callers_transaction_keeps_it_usable(
    subs: Subscriptions,
    side: Side,
    linked_user: Callable[[str], uuid.UUID],
    broken: Callable[[], None],
) -> None:
    linked_user(customer_of(BASIL_UPDATED))
    with side.transaction():
        assert subs.apply_stripe_event(load(BASIL_UPDATED)) == "failed"
        assert subs.apply_stripe_event(invoice_finalized()) == "ignored"
    assert sorted(e.outcome for e in subs.events()) == ["failed", "ignored"]


def test_a_callers_rollback_undoes_the_event_too(subs: Subscriptions, side: Side) -> None:
    class Undo(Exception):
        pass

    def apply_then_undo() -> None:
        with side.transaction():
            assert subs.apply_stripe_event(invoice_finalized()) == "ignored"
            raise Undo

    with pytest.raises(Undo):
        apply_then_undo()
    assert subs.events() == []


def test_replay_unmatched_applies_what_now_matches(
    subs: Subscriptions, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    event = load(BASIL_UPDATED)
    assert subs.apply_stripe_event(event) == "unmatched"
    assert subs.replay() == {event["id"]: "unmatched"}
    user = make_user()
    # Linked behind the library's back (e.g. by hand in SQL): replay picks it up.
    T.link_by_hand.exec(conn, user_id=user, customer_id=customer_of(BASIL_UPDATED))
    assert subs.replay("unmatched", limit=5) == {event["id"]: "applied"}


@pytest.mark.parametrize(("outcome", "limit"), [("applied", None), ("bogus", None), ("failed", 0)])
def test_replay_refuses_bad_arguments(subs: Subscriptions, outcome: str, limit: int | None) -> None:
    with pytest.raises(InvalidInput):
        subs.replay(outcome, limit=limit)


def test_events_filters_and_limits(subs: Subscriptions) -> None:
    for n in range(5):
        subs.apply_stripe_event(invoice_finalized(event_id=f"evt_inv{n}"))
    subs.apply_stripe_event(load(BASIL_UPDATED))
    assert len(subs.events()) == 6
    assert len(subs.events(limit=2)) == 2
    assert [e.id for e in subs.events("unmatched")] == [load(BASIL_UPDATED)["id"]]
    assert subs.events("applied") == []
    with pytest.raises(InvalidInput):
        subs.events("bogus")
    with pytest.raises(InvalidInput):
        subs.events(limit=0)


# -- the caller's transaction -------------------------------------------------------------


def test_a_non_autocommit_connection_commits_nothing_by_itself(
    side: Side, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    """Every write joins the caller's implicit transaction; its rollback undoes all."""
    user, other = make_user(), make_user()
    checkout = variant(CHECKOUT, client_reference_id=str(other))
    # autocommit off, no transaction open
    with side.connect(Subscriptions, autocommit=False) as subs:
        assert subs.link_customer(user, customer_of(BASIL_UPDATED)) == {}
        assert subs.apply_stripe_event(load(BASIL_UPDATED)) == "applied"
        assert subs.apply_stripe_event(variant(BASIL_CREATED, customer="cus_nobody")) == (
            "unmatched"
        )
        assert subs.apply_stripe_event(invoice_finalized()) == "ignored"
        assert subs.apply_stripe_event(checkout) == "applied"
        bad = variant(BASIL_UPDATED, event_id="evt_bad", status="bogus")
        assert subs.apply_stripe_event(bad) == "failed"
        with pytest.raises(Conflict):
            subs.link_customer(user, customer_of(CHECKOUT))
        assert subs.replay("failed") == {"evt_bad": "failed"}
        assert subs.has_access(user)  # the caller's transaction is still usable
        assert subs.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        subs.conn.rollback()
    assert T.count_events.one(conn) == {"n": 0}
    assert T.count_subscriptions.one(conn) == {"n": 0}
    assert T.user_customer.one(conn, user_id=user) == {"stripe_customer_id": None}
    assert T.user_customer.one(conn, user_id=other) == {"stripe_customer_id": None}


def test_a_non_autocommit_connection_keeps_what_the_caller_commits(
    side: Side, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    user = make_user()
    with side.connect(Subscriptions, autocommit=False) as subs:
        assert subs.link_customer(user, customer_of(BASIL_UPDATED)) == {}
        assert subs.apply_stripe_event(load(BASIL_UPDATED)) == "applied"
        subs.conn.commit()
    assert Subscriptions(conn).has_access(user)
    assert T.count_events.one(conn) == {"n": 1}


# -- concurrency ----------------------------------------------------------------------------


def _race(side: Side, jobs: list[Callable[[Subscriptions], Any]]) -> list[Any]:
    """Run each job in a thread with a connection of its own, all released at once;
    results or exceptions."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        with side.connect(Subscriptions) as subs:
            barrier.wait()
            try:
                results[i] = jobs[i](subs)
            except Exception as exc:
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _deliver(event: dict[str, Any]) -> Callable[[Subscriptions], str]:
    return lambda subs: subs.apply_stripe_event(event)


def _link(user: uuid.UUID, customer: str) -> Callable[[Subscriptions], dict[str, str]]:
    return lambda subs: subs.link_customer(user, customer)


@contextlib.contextmanager
def _in_transaction(side: Side) -> Iterator[Subscriptions]:
    """The repository on a connection of its own, inside an open transaction."""
    with side.connect(Subscriptions) as subs, subs.conn.transaction():
        yield subs


def _wait_for_lock_waiter(conn: psycopg.Connection[Any], *, advisory: bool = False) -> None:
    """Until another session of this database waits on a lock (with ``advisory``, on the
    customer lock): a condition, not a timing."""
    waiters = T.advisory_waiters if advisory else T.lock_waiters
    deadline = time.monotonic() + 60
    while waiters.one(conn) == {"n": 0}:
        assert time.monotonic() < deadline, "nobody ever waited for the lock"
        time.sleep(0.01)


def _apply_in_transaction(side: Side, event: dict[str, Any]) -> str:
    """Apply one event in an explicit transaction on a connection of its own."""
    with _in_transaction(side) as own:
        return own.apply_stripe_event(event)


def _second_waits_for_first(
    side: Side, conn: psycopg.Connection[Any], first: dict[str, Any], second: dict[str, Any]
) -> tuple[str, str]:
    """Apply ``first`` in an open transaction; ``second`` from another connection,
    which blocks on the first's lock; then commit the first. Both outcomes."""
    results: list[Any] = []

    def deliver() -> None:
        try:
            results.append(_apply_in_transaction(side, second))
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    worker = threading.Thread(target=deliver)
    with _in_transaction(side) as holding:
        first_outcome = holding.apply_stripe_event(first)
        worker.start()
        _wait_for_lock_waiter(conn)  # the second delivery now waits for this commit
    worker.join()
    assert len(results) == 1, results
    assert isinstance(results[0], str), results
    return first_outcome, results[0]


def test_concurrent_deliveries_of_one_event_apply_it_once(
    side: Side, subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    linked_user("cus_race")
    for round_ in range(5):
        event = variant(
            BASIL_CREATED,
            event_id=f"evt_race{round_}",
            customer="cus_race",
            subscription_id=f"sub_race{round_}",
        )
        results = _race(side, [_deliver(event)] * 6)
        assert Counter(results) == {"applied": 1, "duplicate": 5}, results
    assert len(subs.events()) == 5


def test_concurrent_different_events_converge_to_the_newest(
    side: Side, subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    linked_user("cus_race")
    for round_ in range(5):
        sub_id = f"sub_conv{round_}"
        events = [
            variant(
                BASIL_UPDATED,
                event_id=f"evt_conv{round_}_{n}",
                created=1_700_000_000 + n,
                customer="cus_race",
                subscription_id=sub_id,
                status=["trialing", "active", "past_due", "unpaid", "active", "canceled"][n],
            )
            for n in range(6)
        ]
        results = _race(side, [_deliver(e) for e in events])
        assert set(results) <= {"applied", "stale"}, results
        assert results[-1] == "applied"
        sub = subs.get_by_stripe_id(sub_id)
        assert sub is not None
        assert sub.status == "canceled"


def test_concurrent_links_of_one_customer_to_two_users(
    side: Side, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    first, second = make_user(), make_user()
    results = _race(side, [_link(first, "cus_both"), _link(second, "cus_both")])
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "dict"], results
    winner = first if results[0] == {} else second
    assert T.user_customer.one(conn, user_id=winner) == {"stripe_customer_id": "cus_both"}


def test_concurrent_link_and_delivery_lose_nothing(
    side: Side, subs: Subscriptions, make_user: MakeUser
) -> None:
    for round_ in range(8):
        user, customer = make_user(), f"cus_link{round_}"
        event = variant(BASIL_UPDATED, event_id=f"evt_link{round_}", customer=customer)
        event["data"]["object"]["id"] = f"sub_link{round_}"
        results = _race(
            side,
            [_link(user, customer), _deliver(event)],
        )
        assert not any(isinstance(r, Exception) for r in results), results
        recorded = subs.event(event["id"])
        assert recorded is not None, results
        assert recorded.outcome == "applied", results
        assert subs.has_access(user)


def test_an_event_judged_unmatched_during_a_link_waits_and_applies(
    side: Side, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    user = make_user()
    event = variant(BASIL_UPDATED, customer="cus_interleave")
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.extend(_race(side, [_deliver(event)])))
    with _in_transaction(side) as linking:
        assert linking.link_customer(user, "cus_interleave") == {}
        worker.start()
        _wait_for_lock_waiter(conn, advisory=True)  # it saw no link, and now waits on the lock
    worker.join()
    assert results == ["applied"]


def test_a_link_waits_for_an_unmatched_event_then_replays_it(
    side: Side, conn: psycopg.Connection[Any], subs: Subscriptions, make_user: MakeUser
) -> None:
    user = make_user()
    event = variant(BASIL_UPDATED, customer="cus_interleave")
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.extend(_race(side, [_link(user, "cus_interleave")]))
    )
    with _in_transaction(side) as delivering:
        assert delivering.apply_stripe_event(event) == "unmatched"
        worker.start()
        _wait_for_lock_waiter(conn, advisory=True)  # the link waits for this delivery to commit
    worker.join()
    assert results == [{event["id"]: "applied"}]
    assert subs.has_access(user)


def test_a_link_and_a_metadata_match_of_one_user_do_not_deadlock(
    side: Side, conn: psycopg.Connection[Any], subs: Subscriptions, make_user: MakeUser
) -> None:
    """The link holds the user row; a delivery naming that user must wait before its insert."""
    user = make_user()
    by_metadata = variant(
        BASIL_UPDATED, customer="cus_dl", subscription_id="sub_dl", metadata={"user_id": str(user)}
    )
    by_link = variant(
        BASIL_CREATED,
        customer="cus_dl",
        subscription_id="sub_dl",
        created=by_metadata["created"] - 1,
    )
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.extend(_race(side, [_deliver(by_metadata)])))
    with _in_transaction(side) as linking:
        assert linking.link_customer(user, "cus_dl") == {}  # holds the user row
        worker.start()
        _wait_for_lock_waiter(conn)  # the delivery waits for the link
        assert linking.apply_stripe_event(by_link) == "applied"  # inserts sub_dl
    worker.join()
    assert results == ["applied"]
    sub = subs.get_by_stripe_id("sub_dl")
    assert sub is not None
    assert sub.status == "active"


@pytest.mark.parametrize("existing", [False, True], ids=["new-row", "existing-row"])
def test_an_update_waiting_on_a_same_second_deletion_is_stale(
    side: Side,
    conn: psycopg.Connection[Any],
    subs: Subscriptions,
    linked_user: Callable[[str], uuid.UUID],
    existing: bool,
) -> None:
    """The reviewer's repro: the waiting update used to read the deletion's rank as 1."""
    customer, sub_id, second = "cus_rank", "sub_rank", 1_760_000_000
    linked_user(customer)
    if existing:
        earlier = variant(
            BASIL_CREATED, event_id="evt_rank_0", created=second - 60, customer=customer,
            subscription_id=sub_id,
        )  # fmt: skip
        assert subs.apply_stripe_event(earlier) == "applied"
    deleted = variant(
        BASIL_DELETED, event_id="evt_rank_a", created=second, customer=customer,
        subscription_id=sub_id,
    )  # fmt: skip
    updated = variant(
        BASIL_UPDATED, event_id="evt_rank_b", created=second, customer=customer,
        subscription_id=sub_id, status="active",
    )  # fmt: skip
    assert _second_waits_for_first(side, conn, deleted, updated) == ("applied", "stale")
    sub = subs.get_by_stripe_id(sub_id)
    assert sub is not None
    assert sub.status == "canceled"
    recorded = subs.event("evt_rank_b")
    assert recorded is not None
    assert recorded.outcome == "stale"
    row = T.subscription_row.one(conn, stripe_subscription_id=sub_id)
    assert row is not None
    assert (row["last_event_id"], row["last_event_rank"]) == ("evt_rank_a", 2)


@pytest.mark.parametrize("created_first", [True, False], ids=["created-first", "updated-first"])
def test_same_second_created_and_updated_concurrently_the_update_wins(
    side: Side,
    conn: psycopg.Connection[Any],
    subs: Subscriptions,
    linked_user: Callable[[str], uuid.UUID],
    created_first: bool,
) -> None:
    """The update's id sorts first, so only the rank can make it win."""
    customer, sub_id, second = "cus_rank2", "sub_rank2", 1_760_000_000
    linked_user(customer)
    created = variant(
        BASIL_CREATED, event_id="evt_rank_z", created=second, customer=customer,
        subscription_id=sub_id, status="incomplete",
    )  # fmt: skip
    updated = variant(
        BASIL_UPDATED, event_id="evt_rank_a", created=second, customer=customer,
        subscription_id=sub_id, status="active",
    )  # fmt: skip
    if created_first:
        assert _second_waits_for_first(side, conn, created, updated) == ("applied", "applied")
    else:
        assert _second_waits_for_first(side, conn, updated, created) == ("applied", "stale")
    sub = subs.get_by_stripe_id(sub_id)
    assert sub is not None
    assert sub.status == "active"
    row = T.subscription_row.one(conn, stripe_subscription_id=sub_id)
    assert row is not None
    assert (row["last_event_id"], row["last_event_rank"]) == ("evt_rank_a", 1)


def test_the_delivery_statement_stays_short_enough_for_psycopgs_cache() -> None:
    """psycopg re-parses statements of 4096 characters or more on every call."""
    from trampolin import queries

    assert len(queries.load("subscriptions").apply_snapshot.sql) < 4096


# -- invoice payment events ---------------------------------------------------------------

SUB, CUS = "sub_1NiEd5CwEGCgBV8c3ON1VNaz", "cus_OV8zF7RMsBo1K1"  # of INVOICE_PAID and CHECKOUT
T0 = 1_760_000_000


def snapshot(
    status: str, created: int, *, event_id: str, sub_id: str = SUB, kind: str = "updated"
) -> dict[str, Any]:
    """A customer.subscription.<kind> event of ``sub_id`` (customer CUS) with that status."""
    name = BASIL_CREATED if kind == "created" else BASIL_UPDATED
    return variant(
        name,
        event_id=event_id,
        created=created,
        customer=CUS,
        subscription_id=sub_id,
        status=status,
    )


def invoice(kind: str, created: int, *, event_id: str, sub_id: str = SUB) -> dict[str, Any]:
    """A real invoice.paid ("paid") or invoice.payment_failed ("failed") of ``sub_id``."""
    if kind == "paid":
        event = variant(INVOICE_PAID, event_id=event_id, created=created, subscription=sub_id)
    else:
        event = variant(INVOICE_FAILED, event_id=event_id, created=created, customer=CUS)
        event["data"]["object"]["parent"]["subscription_details"]["subscription"] = sub_id
    return event


@pytest.mark.parametrize(
    ("kind", "before", "after"),
    [
        ("paid", "incomplete", "active"),
        ("paid", "past_due", "active"),
        ("paid", "unpaid", "active"),
        ("paid", "trialing", "active"),
        ("paid", "active", "active"),
        ("paid", "canceled", "canceled"),  # a late payment never revives a subscription
        ("paid", "incomplete_expired", "incomplete_expired"),
        ("paid", "paused", "paused"),
        ("failed", "active", "past_due"),
        ("failed", "trialing", "past_due"),
        ("failed", "incomplete", "incomplete"),  # the first payment failed: Stripe keeps it so
        ("failed", "unpaid", "unpaid"),
        ("failed", "canceled", "canceled"),
    ],
)
def test_a_newer_payment_event_moves_the_status_the_app_way(
    subs: Subscriptions,
    conn: psycopg.Connection[Any],
    linked_user: Callable[[str], uuid.UUID],
    kind: str,
    before: str,
    after: str,
) -> None:
    user = linked_user(CUS)
    assert subs.apply_stripe_event(snapshot(before, T0, event_id="evt_snap")) == "applied"
    assert subs.apply_stripe_event(invoice(kind, T0 + 60, event_id="evt_inv")) == "applied"
    assert T.invoice_state.one(conn, stripe_subscription_id=SUB) == {
        "status": after,
        "snapshot_status": before,
        "invoice_status": "active" if kind == "paid" else "past_due",
        "invoice_event_id": "evt_inv",
    }
    assert subs.has_access(user) is (after in {"active", "trialing", "past_due"})
    assert subs.apply_stripe_event(invoice(kind, T0 + 60, event_id="evt_inv")) == "duplicate"


def test_the_real_invoices_as_they_come(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    """The real paid invoice (pre-basil) and failed payment (basil), signed and verified."""
    linked_user(CUS)
    paid = load(INVOICE_PAID)
    assert subs.apply_stripe_event(snapshot("incomplete", paid["created"] - 5, event_id="e1")) == (
        "applied"
    )
    assert subs.apply_stripe_event(signed(paid)) == "applied"
    sub = subs.get_by_stripe_id(SUB)
    assert sub is not None
    assert (sub.status, sub.has_access) == ("active", True)
    linked_user("cus_1234")
    failed = load(INVOICE_FAILED)
    renewed = variant(
        BASIL_UPDATED, event_id="e2", created=failed["created"] - 5, customer="cus_1234",
        subscription_id="sub_1234", status="active",
    )  # fmt: skip
    assert subs.apply_stripe_event(renewed) == "applied"
    assert subs.apply_stripe_event(signed(failed)) == "applied"
    sub = subs.get_by_stripe_id("sub_1234")
    assert sub is not None
    assert sub.status == "past_due"


def test_a_payment_of_nothing_or_of_no_subscription_is_ignored(
    subs: Subscriptions, conn: psycopg.Connection[Any], linked_user: Callable[[str], uuid.UUID]
) -> None:
    linked_user(CUS)
    assert subs.apply_stripe_event(snapshot("trialing", T0, event_id="evt_trial")) == "applied"
    trial_invoice = variant(INVOICE_PAID, event_id="evt_free", created=T0 + 1, amount_paid=0)
    assert subs.apply_stripe_event(trial_invoice) == "ignored"  # a trial's first invoice
    one_off = variant(INVOICE_PAID, event_id="evt_one_off", created=T0 + 2, subscription=None)
    assert subs.apply_stripe_event(one_off) == "ignored"
    assert T.invoice_state.one(conn, stripe_subscription_id=SUB) == {
        "status": "trialing",
        "snapshot_status": "trialing",
        "invoice_status": None,
        "invoice_event_id": None,
    }


@pytest.mark.parametrize("invoice_first", [True, False], ids=["invoice-first", "snapshot-first"])
def test_an_invoice_never_overrides_a_newer_snapshot(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID], invoice_first: bool
) -> None:
    linked_user(CUS)
    assert subs.apply_stripe_event(snapshot("active", T0, event_id="evt_0")) == "applied"
    paid = invoice("paid", T0 + 10, event_id="evt_paid")
    newer = snapshot("unpaid", T0 + 20, event_id="evt_unpaid")
    if invoice_first:
        assert [subs.apply_stripe_event(e) for e in (paid, newer)] == ["applied", "applied"]
    else:
        assert [subs.apply_stripe_event(e) for e in (newer, paid)] == ["applied", "stale"]
    sub = subs.get_by_stripe_id(SUB)
    assert sub is not None
    assert sub.status == "unpaid"


@pytest.mark.parametrize("invoice_first", [True, False], ids=["invoice-first", "snapshot-first"])
@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        ("updated", "past_due", "past_due"),  # same second: a snapshot wins the tie ...
        ("created", "incomplete", "active"),  # ... but for created, which comes before paying
    ],
)
def test_same_second_invoice_and_snapshot(
    subs: Subscriptions,
    linked_user: Callable[[str], uuid.UUID],
    invoice_first: bool,
    kind: str,
    status: str,
    expected: str,
) -> None:
    linked_user(CUS)
    if kind == "updated":
        assert subs.apply_stripe_event(snapshot("active", T0 - 60, event_id="evt_0")) == "applied"
    events = [
        invoice("paid", T0, event_id="evt_zzz_paid"),  # the greater id: only the rank decides
        snapshot(status, T0, event_id="evt_aaa_snap", kind=kind),
    ]
    for event in events if invoice_first else events[::-1]:
        subs.apply_stripe_event(event)
    sub = subs.get_by_stripe_id(SUB)
    assert sub is not None
    assert sub.status == expected


def test_a_late_older_snapshot_keeps_a_newer_payment(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    linked_user(CUS)
    assert subs.apply_stripe_event(snapshot("past_due", T0, event_id="evt_0")) == "applied"
    assert subs.apply_stripe_event(invoice("paid", T0 + 20, event_id="evt_paid")) == "applied"
    late = snapshot("past_due", T0 + 10, event_id="evt_late")  # newer than evt_0 only
    assert subs.apply_stripe_event(late) == "applied"
    sub = subs.get_by_stripe_id(SUB)
    assert sub is not None
    assert sub.status == "active"
    older_invoice = invoice("failed", T0 + 15, event_id="evt_failed_earlier")
    assert subs.apply_stripe_event(older_invoice) == "stale"  # older than the newest invoice


def _billing_story(sub_id: str) -> list[dict[str, Any]]:
    """A subscription's events: created and paid, a failed renewal, paid again (no snapshot
    after that payment). Its newest state: active."""
    return [
        snapshot("incomplete", T0, event_id=f"evt_{sub_id}_0", sub_id=sub_id, kind="created"),
        invoice("paid", T0, event_id=f"evt_{sub_id}_1", sub_id=sub_id),
        invoice("failed", T0 + 100, event_id=f"evt_{sub_id}_2", sub_id=sub_id),
        snapshot("past_due", T0 + 100, event_id=f"evt_{sub_id}_3", sub_id=sub_id),
        invoice("paid", T0 + 200, event_id=f"evt_{sub_id}_4", sub_id=sub_id),
    ]


def test_every_delivery_order_of_snapshots_and_invoices_converges(
    subs: Subscriptions, conn: psycopg.Connection[Any], linked_user: Callable[[str], uuid.UUID]
) -> None:
    """All 120 orders of five events, each delivered twice; an invoice that comes before
    its subscription's first snapshot makes the row, which the snapshot completes."""
    linked_user(CUS)
    for n, order in enumerate(itertools.permutations(range(5))):
        sub_id = f"sub_story{n}"
        story = _billing_story(sub_id)
        for i in order:
            subs.apply_stripe_event(story[i])
        assert {subs.apply_stripe_event(story[i]) for i in order} == {"duplicate"}
        assert T.invoice_state.one(conn, stripe_subscription_id=sub_id) == {
            "status": "active",
            "snapshot_status": "past_due",
            "invoice_status": "active",
            "invoice_event_id": f"evt_{sub_id}_4",
        }, order
    assert subs.events("unmatched", limit=10_000) == []


def test_an_invoice_before_its_subscription_makes_its_row(
    subs: Subscriptions, conn: psycopg.Connection[Any], linked_user: Callable[[str], uuid.UUID]
) -> None:
    """Stripe sends invoice.paid and customer.subscription.created at once, in any order."""
    user = linked_user(CUS)
    paid = load(INVOICE_PAID)
    assert subs.apply_stripe_event(paid) == "applied"
    recorded = subs.event(paid["id"])
    assert recorded is not None
    assert (recorded.stripe_customer_id, recorded.stripe_subscription_id) == (CUS, SUB)
    sub = subs.get_by_stripe_id(SUB)
    assert sub is not None
    assert (sub.user_id, sub.status, sub.price_id) == (user, "active", None)  # paid, no snapshot
    created = snapshot("incomplete", paid["created"] - 3, event_id="evt_created", kind="created")
    assert subs.apply_stripe_event(created) == "applied"
    assert T.invoice_state.one(conn, stripe_subscription_id=SUB) == {
        "status": "active",  # the payment is newer than the snapshot
        "snapshot_status": "incomplete",
        "invoice_status": "active",
        "invoice_event_id": paid["id"],
    }
    sub = subs.get_by_stripe_id(SUB)
    assert sub is not None
    assert sub.price_id == "price_1Ry3VCLf1iznKy11PtmX3JJE"


def test_a_failed_first_payment_before_the_subscription_grants_nothing(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user(CUS)
    assert subs.apply_stripe_event(invoice("failed", T0, event_id="evt_failed")) == "applied"
    sub = subs.get_by_stripe_id(SUB)
    assert sub is not None
    assert sub.status == "incomplete"  # as Stripe leaves a subscription whose first payment failed
    assert not subs.has_access(user)


def test_an_invoice_of_an_unknown_customer_waits_for_its_link(
    subs: Subscriptions, make_user: MakeUser
) -> None:
    paid = load(INVOICE_PAID)
    assert subs.apply_stripe_event(paid) == "unmatched"
    user = make_user()
    assert subs.link_customer(user, CUS) == {paid["id"]: "applied"}
    assert subs.has_access(user)


@pytest.mark.parametrize("row_first", [True, False], ids=["snapshot-first", "invoice-first"])
def test_an_invoice_and_its_subscriptions_first_snapshot_at_the_same_time(
    side: Side,
    conn: psycopg.Connection[Any],
    subs: Subscriptions,
    linked_user: Callable[[str], uuid.UUID],
    row_first: bool,
) -> None:
    """The second waits on the first's new row (the unique key), then updates it."""
    linked_user(CUS)
    created = snapshot("incomplete", T0, event_id="evt_created", kind="created")
    paid = invoice("paid", T0 + 5, event_id="evt_paid")
    first, second = (created, paid) if row_first else (paid, created)
    assert _second_waits_for_first(side, conn, first, second) == ("applied", "applied")
    assert T.invoice_state.one(conn, stripe_subscription_id=SUB) == {
        "status": "active",
        "snapshot_status": "incomplete",
        "invoice_status": "active",
        "invoice_event_id": "evt_paid",
    }


def test_invoices_racing_their_subscriptions_first_events(
    side: Side, subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    linked_user(CUS)
    for round_ in range(8):
        story = _billing_story(f"sub_race{round_}")
        results = _race(side, [_deliver(e) for e in story])
        assert not any(isinstance(r, Exception) for r in results), results
        sub = subs.get_by_stripe_id(f"sub_race{round_}")
        assert sub is not None
        assert sub.status == "active", results
    assert subs.events("unmatched") == []


def test_the_status_rule_in_sql(conn: psycopg.Connection[Any]) -> None:
    """subscription_status_with_invoice (migration 0012) on its own: ties and NULLs."""
    at, later = datetime.fromtimestamp(T0, tz=UTC), datetime.fromtimestamp(T0 + 1, tz=UTC)

    def rule(snap: str, rank: int, inv: str | None, inv_at: datetime | None) -> str:
        row = T.status_with_invoice.one(
            conn, snapshot_status=snap, snapshot_created=at, snapshot_rank=rank,
            invoice_status=inv, invoice_created=inv_at,
        )  # fmt: skip
        assert row is not None
        return str(row["status"])

    assert rule("past_due", 1, None, None) == "past_due"
    assert rule("past_due", 1, "active", at) == "past_due"  # a tie goes to the snapshot
    assert rule("past_due", 2, "active", at) == "past_due"
    assert rule("incomplete", 0, "active", at) == "active"  # but created comes first
    assert rule("past_due", 1, "active", later) == "active"
    assert rule("canceled", 1, "active", later) == "canceled"
    assert rule("active", 1, "past_due", later) == "past_due"


# -- the sign-up row -------------------------------------------------------------------------


def signup(conn: psycopg.Connection[Any], user: uuid.UUID, *, customer: str = CUS,
           ends_in: timedelta | None = timedelta(days=7)) -> uuid.UUID:  # fmt: skip
    """The app's sign-up row: trialing, the customer it made, no Stripe subscription yet."""
    now = datetime.now(UTC)
    row = T.insert_signup_row.one(
        conn, user_id=user, customer_id=customer, trial_start=now - timedelta(hours=1),
        trial_end=None if ends_in is None else now + ends_in,
    )  # fmt: skip
    assert row is not None
    return uuid.UUID(str(row["id"]))


def stripe_trial(created: int, *, event_id: str, user: uuid.UUID, kind: str = "created",
                 sub_id: str = SUB) -> dict[str, Any]:  # fmt: skip
    """Stripe's trialing subscription as the app's Checkout makes it (metadata.userId)."""
    event = snapshot("trialing", created, event_id=event_id, sub_id=sub_id, kind=kind)
    event["data"]["object"].update(
        metadata={"userId": str(user), "plan": "bronze"},
        trial_start=created - 10, trial_end=created + 7 * 86400,
    )  # fmt: skip
    return event


def test_the_apps_sign_up_checkout_and_subscription_make_one_row(
    subs: Subscriptions, side: Side, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    """Sign-up row with the app's customer; Checkout names nobody (the app sets no
    client_reference_id) and the user has no customer yet: the sign-up row finds them."""
    user = make_user()
    row = signup(conn, user)
    usage = side.repo(Usage)
    assert usage.consume(user, 3, reason="before checkout") == 7
    checkout = variant(CHECKOUT, client_reference_id=None, metadata={})
    assert subs.apply_stripe_event(signed(checkout)) == "applied"
    assert T.user_customer.one(conn, user_id=user) == {"stripe_customer_id": CUS}
    [linked] = T.rows_of_user.many(conn, user_id=user)
    assert (linked["id"], linked["stripe_subscription_id"]) == (row, SUB)
    now = int(time.time())  # Stripe's trial starts at checkout, after the sign-up
    assert subs.apply_stripe_event(stripe_trial(now, event_id="evt_trial", user=user)) == "applied"
    [linked] = T.rows_of_user.many(conn, user_id=user)
    assert (linked["id"], linked["status"], linked["snapshot_status"]) == (
        row,
        "trialing",
        "trialing",
    )
    assert linked["trial_end"] == datetime.fromtimestamp(now + 7 * 86400, tz=UTC)  # Stripe's
    allowance = usage.allowance(user)
    assert allowance is not None
    assert (allowance.trialing, allowance.used, allowance.remaining) == (True, 3, 7)  # same counter
    sub = subs.get_for_user(user)
    assert sub is not None
    assert (sub.id, sub.stripe_subscription_id, sub.has_access) == (row, SUB, True)


@pytest.mark.parametrize("checkout_first", [True, False], ids=["checkout-first", "created-first"])
def test_checkout_and_the_subscription_in_either_order_link_the_same_row(
    subs: Subscriptions, conn: psycopg.Connection[Any], make_user: MakeUser, checkout_first: bool
) -> None:
    user = make_user()
    row = signup(conn, user)
    events = [
        variant(CHECKOUT, client_reference_id=None, metadata={}),
        stripe_trial(T0, event_id="evt_trial", user=user),
        stripe_trial(T0 + 60, event_id="evt_active", user=user, kind="updated"),
    ]
    events[2]["data"]["object"]["status"] = "active"
    for event in events if checkout_first else events[::-1]:
        assert subs.apply_stripe_event(event) in {"applied", "stale"}
    assert [(r["id"], r["stripe_subscription_id"], r["status"])
            for r in T.rows_of_user.many(conn, user_id=user)] == [(row, SUB, "active")]  # fmt: skip


def test_a_user_linked_by_customer_has_the_sign_up_row_linked(
    subs: Subscriptions, conn: psycopg.Connection[Any], linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user(CUS)
    row = signup(conn, user, customer="cus_from_sign_up")
    assert subs.apply_stripe_event(snapshot("active", T0, event_id="evt_1", kind="created")) == (
        "applied"
    )
    [linked] = T.rows_of_user.many(conn, user_id=user)
    assert (linked["id"], linked["stripe_subscription_id"], linked["status"]) == (
        row,
        SUB,
        "active",
    )
    sub = subs.get_by_stripe_id(SUB)
    assert sub is not None
    assert sub.stripe_customer_id == CUS


def test_concurrent_first_events_link_the_sign_up_row_once(
    side: Side, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    for round_ in range(6):
        user = make_user()
        row = signup(conn, user, customer=f"cus_signup{round_}")
        sub_id = f"sub_signup{round_}"
        events = [
            stripe_trial(T0, event_id=f"evt_s{round_}_a", user=user, sub_id=sub_id),
            stripe_trial(
                T0 + 1, event_id=f"evt_s{round_}_b", user=user, sub_id=sub_id, kind="updated"
            ),
            stripe_trial(
                T0 + 2, event_id=f"evt_s{round_}_c", user=user, sub_id=sub_id, kind="updated"
            ),
        ]
        checkout = variant(
            CHECKOUT, event_id=f"evt_co{round_}", customer=f"cus_signup{round_}",
            client_reference_id=None, metadata={}, subscription=sub_id,
        )  # fmt: skip
        results = _race(side, [_deliver(e) for e in [*events, checkout]])
        assert not any(isinstance(r, Exception) for r in results), results
        rows = T.rows_of_user.many(conn, user_id=user)
        assert [(r["id"], r["stripe_subscription_id"]) for r in rows] == [(row, sub_id)], results


def test_a_customer_who_cancels_and_subscribes_again_gets_a_new_row(
    subs: Subscriptions, conn: psycopg.Connection[Any], linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user(CUS)
    row = signup(conn, user)
    assert subs.apply_stripe_event(snapshot("trialing", T0, event_id="e1", kind="created")) == (
        "applied"
    )
    deleted = variant(BASIL_DELETED, event_id="e2", created=T0 + 100, customer=CUS,
                      subscription_id=SUB)  # fmt: skip
    assert subs.apply_stripe_event(deleted) == "applied"
    assert not subs.has_access(user)
    again = snapshot("active", T0 + 1000, event_id="e3", sub_id="sub_again", kind="created")
    assert subs.apply_stripe_event(again) == "applied"
    rows = T.rows_of_user.many(conn, user_id=user)
    assert [(r["id"] == row, r["stripe_subscription_id"], r["status"]) for r in rows] == [
        (True, SUB, "canceled"),
        (False, "sub_again", "active"),
    ]
    current = subs.get_for_user(user)
    assert current is not None
    assert (current.stripe_subscription_id, current.has_access) == ("sub_again", True)
    assert subs.has_access(user)


@pytest.mark.parametrize(
    ("ends_in", "access"),
    [(timedelta(days=3), True), (timedelta(seconds=-1), False), (None, True)],
    ids=["running", "ended", "no-end"],
)
def test_a_sign_up_trial_grants_access_until_its_trial_end(
    subs: Subscriptions,
    conn: psycopg.Connection[Any],
    make_user: MakeUser,
    ends_in: timedelta | None,
    access: bool,
) -> None:
    user = make_user()
    row = signup(conn, user, ends_in=ends_in)
    assert subs.has_access(user) is access
    sub = subs.get_for_user(user)
    assert sub is not None
    assert (sub.id, sub.stripe_subscription_id, sub.status, sub.has_access) == (
        row, None, "trialing", access,
    )  # fmt: skip


def test_stripes_trial_end_is_stripes_to_enforce(
    subs: Subscriptions, linked_user: Callable[[str], uuid.UUID]
) -> None:
    """A linked trialing subscription grants access until Stripe says otherwise."""
    user = linked_user(CUS)
    ended = snapshot("trialing", T0, event_id="evt_t", kind="created")
    ended["data"]["object"].update(trial_start=T0 - 100, trial_end=T0 - 10)  # long past
    assert subs.apply_stripe_event(ended) == "applied"
    assert subs.has_access(user)


def test_get_for_user_prefers_a_running_trial_to_an_ended_subscription(
    subs: Subscriptions, conn: psycopg.Connection[Any], linked_user: Callable[[str], uuid.UUID]
) -> None:
    user = linked_user(CUS)
    assert subs.apply_stripe_event(snapshot("canceled", T0, event_id="e1", sub_id="sub_old")) == (
        "applied"
    )
    row = signup(conn, user)
    current = subs.get_for_user(user)
    assert current is not None
    assert (current.id, current.has_access) == (row, True)


# -- CLI --------------------------------------------------------------------------------------


def _cli(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["--database-url", db_url, "stripe", *args])


def test_cli_apply_events_replay(
    db_url: str, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    result = _cli(db_url, "apply", str(DATA / BASIL_UPDATED))
    assert result.exit_code == 0, result.output
    assert "evt_1SBiOdBe0ycHroRBN3pieuMu customer.subscription.updated: unmatched" in result.output
    assert "duplicate" in _cli(db_url, "apply", str(DATA / BASIL_UPDATED)).output

    listing = _cli(db_url, "events", "--outcome", "unmatched")
    assert listing.exit_code == 0
    assert "evt_1SBiOdBe0ycHroRBN3pieuMu" in listing.output
    assert "no events with outcome applied" in _cli(db_url, "events", "--outcome", "applied").output

    nothing = _cli(db_url, "replay", "--outcome", "failed")
    assert nothing.exit_code == 0
    assert "nothing to do" in nothing.output

    T.link_by_hand.exec(conn, user_id=make_user(), customer_id=customer_of(BASIL_UPDATED))
    replay = _cli(db_url, "replay")
    assert replay.exit_code == 0, replay.output
    assert "evt_1SBiOdBe0ycHroRBN3pieuMu applied" in replay.output
    assert "replayed 1 unmatched event(s): 1 applied" in replay.output


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"{not json", "not JSON"), (b"[1]", "expected a JSON object"), (b"{}", "no id")],
)
def test_cli_apply_refuses_bad_files(
    db_url: str, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(content)
    result = run_cli("stripe", "apply", str(path), env={"DATABASE_URL": db_url})
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_apply_reports_a_failure(
    db_url: str, tmp_path: Path, linked_user: Callable[[str], uuid.UUID]
) -> None:
    linked_user(customer_of(BASIL_UPDATED))
    path = tmp_path / "event.json"
    path.write_text(json.dumps(variant(BASIL_UPDATED, status="bogus")))
    result = _cli(db_url, "apply", str(path))
    assert result.exit_code == 1
    assert "failed" in result.output
    assert "subscriptions_status_check" in result.output


def test_cli_refuses_bad_options(db_url: str) -> None:
    assert _cli(db_url, "events", "--outcome", "bogus").exit_code == 2
    assert _cli(db_url, "events", "--limit", "0").exit_code == 2
    assert _cli(db_url, "replay", "--outcome", "applied").exit_code == 2
    assert _cli(db_url, "apply", "/nonexistent.json").exit_code == 2


def test_cli_help_and_migrate_do_not_import_stripe() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from trampolin.cli import main\n"
        "r = CliRunner().invoke(main, ['--help'])\n"
        "assert r.exit_code == 0 and 'stripe' in r.output\n"
        "r = CliRunner().invoke(main, ['stripe', '--help'])\n"
        "assert r.exit_code == 0\n"
        "import trampolin.migrations\n"
        "assert 'stripe' not in sys.modules, 'stripe imported'\n"
        "import trampolin.subscriptions\n"
        "assert 'stripe' not in sys.modules, 'stripe imported by trampolin.subscriptions'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_cli_apply_refuses_an_out_of_range_created(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(variant(BASIL_UPDATED, created=100_000_000_000_000)))
    result = run_cli("stripe", "apply", str(path), env={"DATABASE_URL": db_url})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'created'" in lines[0]


def test_cli_events_refuses_a_huge_limit(db_url: str) -> None:
    result = run_cli("stripe", "events", "--limit", str(10**20), env={"DATABASE_URL": db_url})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    replay = run_cli("stripe", "replay", "--limit", str(10**20), env={"DATABASE_URL": db_url})
    assert replay.returncode == 1
    assert "Traceback" not in replay.stderr
    assert len(replay.stderr.strip().splitlines()) == 1, replay.stderr
