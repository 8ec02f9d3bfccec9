"""trampolin.stripe_payload: webhook verification and payload reading, without a database.

Payloads are real Stripe deliveries (tests/data/stripe, see its README), signed here
with a made-up secret. Nothing talks to Stripe.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.stripe_support import (
    ALL_FILES,
    BASIL_CREATED,
    BASIL_DELETED,
    BASIL_UPDATED,
    CHECKOUT,
    INVOICE_FAILED,
    INVOICE_PAID,
    PRE_UPDATED,
    SECRET,
    load,
    raw,
    sign,
)
from trampolin import stripe_payload
from trampolin.errors import InvalidInput, InvalidSignature, TrampolinError
from trampolin.stripe_payload import (
    InvoicePayment,
    is_invoice_event,
    parse_webhook,
    read_checkout,
    read_event,
    read_invoice,
    read_subscription,
)
from trampolin.values import legacy_uuid


def with_object(name: str, **fields: Any) -> dict[str, Any]:
    """A fixture whose data.object has these fields changed (any value, any type)."""
    event = load(name)
    event["data"]["object"].update(fields)
    return event


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def test_stripe_is_imported_only_by_parse_webhook() -> None:
    code = "import sys, trampolin.stripe_payload\nassert 'stripe' not in sys.modules\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# -- parse_webhook ------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FILES)
def test_parse_webhook_accepts_each_real_payload(name: str) -> None:
    payload = raw(name)
    event = parse_webhook(payload, sign(payload), SECRET)
    assert event["id"] == load(name)["id"]
    assert event.to_dict(for_json=True) == json.loads(payload)


def test_parse_webhook_accepts_a_rotated_secret() -> None:
    payload = raw(BASIL_UPDATED)
    header = sign(payload, "whsec_old") + "," + sign(payload).split(",")[1]
    assert parse_webhook(payload, header, SECRET)["type"] == "customer.subscription.updated"


@pytest.mark.parametrize(
    ("payload", "header"),
    [
        pytest.param(
            raw(BASIL_UPDATED), sign(raw(BASIL_UPDATED), "whsec_other"), id="wrong-secret"
        ),
        pytest.param(
            raw(BASIL_UPDATED).replace(b'"status": "active"', b'"status": "trialing"'),
            sign(raw(BASIL_UPDATED)),
            id="tampered-body",
        ),
        pytest.param(raw(BASIL_UPDATED) + b" ", sign(raw(BASIL_UPDATED)), id="extra-byte"),
        pytest.param(
            raw(BASIL_UPDATED),
            sign(raw(BASIL_UPDATED), timestamp=int(time.time()) - 301),
            id="stale-timestamp",
        ),
        pytest.param(b"{not json", sign(b"{not json"), id="not-json"),
        pytest.param(b"[1, 2]", sign(b"[1, 2]"), id="json-array"),
        pytest.param(b"{}", sign(b"{}"), id="json-object-not-an-event"),
        pytest.param(b"\xff\xfe", "t=1,v1=00", id="not-utf8"),
        pytest.param(raw(BASIL_UPDATED), "", id="empty-header"),
        pytest.param(raw(BASIL_UPDATED), "garbage", id="garbage-header"),
        pytest.param(raw(BASIL_UPDATED), "t=123", id="no-v1"),
    ],
)
def test_parse_webhook_rejects(payload: bytes, header: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        parse_webhook(payload, header, SECRET)
    assert isinstance(caught.value, TrampolinError)
    assert SECRET not in str(caught.value)


def test_parse_webhook_rejects_an_empty_secret() -> None:
    payload = raw(BASIL_UPDATED)
    with pytest.raises(InvalidSignature):
        parse_webhook(payload, sign(payload), "")


def test_parse_webhook_tolerance_is_configurable() -> None:
    payload = raw(BASIL_UPDATED)
    header = sign(payload, timestamp=int(time.time()) - 1000)
    assert parse_webhook(payload, header, SECRET, tolerance=2000)["id"]
    with pytest.raises(InvalidSignature, match="tolerance"):
        parse_webhook(payload, header, SECRET, tolerance=600)


# -- the envelope ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "customer", "subscription"),
    [
        (PRE_UPDATED, "cus_Nc4kL4EPtG5SKe", "sub_1Mqqb6Lt4dXK03v50OA219Ya"),
        (BASIL_CREATED, "cus_StrDyyZ2GNZ3vZ", "sub_1S0ztbLf1iznKy11kxIDV7F8"),
        (CHECKOUT, "cus_OV8zF7RMsBo1K1", "sub_1NiEd5CwEGCgBV8c3ON1VNaz"),
        (INVOICE_PAID, "cus_OV8zF7RMsBo1K1", "sub_1NiEd5CwEGCgBV8c3ON1VNaz"),  # pre-basil
        (INVOICE_FAILED, "cus_1234", "sub_1234"),  # basil: under parent.subscription_details
    ],
)
def test_the_ids_an_event_concerns_in_both_shapes(
    name: str, customer: str, subscription: str
) -> None:
    event = read_event(load(name))
    assert (event.customer_id, event.subscription_id) == (customer, subscription)


def test_the_envelope_of_a_real_delivery() -> None:
    data = load(BASIL_UPDATED)
    event = read_event(data)
    assert event.id == data["id"]
    assert event.type == "customer.subscription.updated"
    assert event.created == at(data["created"])
    assert event.api_version == "2025-08-27.basil"
    assert event.livemode is False
    assert event.payload == data
    assert json.loads(event.payload_json) == data
    assert event.data_object == data["data"]["object"]


def test_expanded_ids_read_like_string_ids() -> None:
    event = load(INVOICE_FAILED)
    invoice = event["data"]["object"]
    invoice["customer"] = {"id": "cus_1234", "object": "customer", "email": None}
    invoice["parent"]["subscription_details"]["subscription"] = {"id": "sub_1234"}
    assert (read_event(event).customer_id, read_event(event).subscription_id) == (
        "cus_1234",
        "sub_1234",
    )
    assert stripe_payload.stripe_id({"id": "cus_1"}) == "cus_1"
    assert stripe_payload.stripe_id("cus_1") == "cus_1"
    for nothing in (None, "", {}, {"id": 5}, 5, ["cus_1"]):
        assert stripe_payload.stripe_id(nothing) is None


def test_an_invoice_names_its_subscription_either_way() -> None:
    read = stripe_payload.invoice_subscription_id
    assert read({"subscription": "sub_old"}) == "sub_old"
    assert read({"subscription": {"id": "sub_old"}}) == "sub_old"
    assert read({"parent": {"subscription_details": {"subscription": "sub_new"}}}) == "sub_new"
    assert read({"subscription": None, "parent": None}) is None
    assert read({"parent": {"type": "quote_details", "subscription_details": None}}) is None


def test_a_stripe_object_and_its_dict_are_the_same_event() -> None:
    payload = raw(BASIL_UPDATED)
    assert read_event(parse_webhook(payload, sign(payload), SECRET)) == read_event(
        json.loads(payload)
    )


def test_an_event_without_data_has_no_ids_and_no_object() -> None:
    event = read_event({"id": "evt_1", "type": "payout.paid", "created": 1, "data": None})
    assert (event.customer_id, event.subscription_id) == (None, None)
    with pytest.raises(InvalidInput, match=r"no data\.object"):
        _ = event.data_object


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "has no id"),
        ({"type": "customer.subscription.updated", "created": 1}, "has no id"),
        ({"id": "", "type": "x", "created": 1}, "has no id"),
        ({"id": "evt\x00", "type": "x", "created": 1}, "NUL"),
        ({"id": "evt_1", "created": 1}, "evt_1 has no type"),
        ({"id": "evt_1", "type": "x"}, "no integer 'created'"),
        ({"id": "evt_1", "type": "x", "created": "yesterday"}, "no integer 'created'"),
        ({"id": "evt_1", "type": "x", "created": True}, "no integer 'created'"),
        ({"id": "evt_1", "type": "x", "created": 10**14}, "'created' is not a usable"),
        ({"id": "evt_1", "type": "x", "created": -(10**14)}, "'created' is not a usable"),
        ("evt_1", "not a Stripe event: str"),
        (None, "not a Stripe event: NoneType"),
        ({"id": "evt_1", "type": "x", "created": 1, "data": {"amount": 1.5j}}, "plain JSON"),
        ({"id": "evt_1", "type": "x", "created": 1, "data": {"n": float("nan")}}, "plain JSON"),
        ({"id": "evt_1", "type": "x", "created": 1, "data": {"when": time}}, "plain JSON"),
        ({"id": "evt_1", "type": "x", "created": 1, "data": {"note": "a\x00b"}}, "NUL"),
    ],
)
def test_not_an_event_is_invalid_input(event: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        read_event(event)


def test_an_escaped_backslash_before_u0000_is_no_nul() -> None:
    event = read_event({"id": "evt_1", "type": "x", "created": 1, "data": {"note": "a\\u0000b"}})
    assert event.payload["data"]["note"] == "a\\u0000b"


# -- the subscription snapshot: both API shapes ----------------------------------


def test_basil_reads_the_period_from_the_item() -> None:
    sub = read_subscription(read_event(load(BASIL_CREATED)))
    assert (sub.subscription_id, sub.customer_id) == (
        "sub_1S0ztbLf1iznKy11kxIDV7F8",
        "cus_StrDyyZ2GNZ3vZ",
    )
    assert sub.status == "incomplete"
    assert sub.price_id == "price_1Ry3VCLf1iznKy11PtmX3JJE"
    assert (sub.quantity, sub.interval, sub.interval_count) == (1, "day", 1)
    assert (sub.current_period_start, sub.current_period_end) == (at(1756364719), at(1756451119))
    assert sub.cancel_at_period_end is False
    assert (sub.canceled_at, sub.ended_at, sub.trial_end) == (None, None, None)


def test_pre_basil_reads_the_period_from_the_subscription() -> None:
    sub = read_subscription(read_event(load(PRE_UPDATED)))
    assert sub.subscription_id == "sub_1Mqqb6Lt4dXK03v50OA219Ya"
    assert sub.status == "active"
    assert (sub.price_id, sub.interval, sub.quantity) == (
        "price_1Mqqb5Lt4dXK03v5cK9prani",
        "month",
        1,
    )
    assert (sub.current_period_start, sub.current_period_end) == (at(1680668814), at(1683260814))
    assert sub.trial_start == at(1680064014)
    assert sub.metadata == {}
    assert sub.metadata_user_id is None


def test_deleted_means_canceled_whatever_the_status_says() -> None:
    sub = read_subscription(read_event(with_object(BASIL_DELETED, status="active")))
    assert sub.status == "canceled"
    assert sub.ended_at is not None
    assert sub.canceled_at is not None


def test_expanded_customer_and_a_plain_price_id() -> None:
    event = with_object(BASIL_UPDATED, customer={"id": "cus_X", "object": "customer"})
    event["data"]["object"]["items"]["data"][0]["price"] = "price_plain"
    sub = read_subscription(read_event(event))
    assert (sub.customer_id, sub.price_id) == ("cus_X", "price_plain")


def test_the_plan_stands_in_for_a_missing_price() -> None:
    event = load(PRE_UPDATED)
    del event["data"]["object"]["items"]["data"][0]["price"]
    sub = read_subscription(read_event(event))
    assert (sub.price_id, sub.interval, sub.interval_count) == (
        "price_1Mqqb5Lt4dXK03v5cK9prani",
        "month",
        1,
    )


def test_a_subscription_without_items_has_no_price() -> None:
    sub = read_subscription(read_event(with_object(BASIL_UPDATED, items=None, quantity=3)))
    assert (sub.price_id, sub.interval, sub.current_period_end, sub.quantity) == (
        None,
        None,
        None,
        3,
    )


@pytest.mark.parametrize(
    ("user_id", "named"),
    [
        ("8d0f5bd0-8f5c-4a2f-9d7e-0c5a3b1f2e4d", uuid.UUID("8d0f5bd0-8f5c-4a2f-9d7e-0c5a3b1f2e4d")),
        ("cm0prismacuid00000000000", legacy_uuid("cm0prismacuid00000000000")),  # adopted ids
        ("", None),
        (42, None),
    ],
)
def test_metadata_user_id(user_id: object, named: uuid.UUID | None) -> None:
    event = with_object(BASIL_UPDATED, metadata={"user_id": user_id})
    sub = read_subscription(read_event(event))
    assert sub.metadata_user_id == named
    assert sub.metadata == {"user_id": user_id}


def test_the_apps_metadata_key_user_id_names_the_user_too() -> None:
    """The app sets subscription_data.metadata.userId; user_id wins when both are there."""
    user, other = uuid.uuid4(), uuid.uuid4()
    camel = with_object(BASIL_UPDATED, metadata={"userId": str(user), "plan": "bronze"})
    assert read_subscription(read_event(camel)).metadata_user_id == user
    both = with_object(BASIL_UPDATED, metadata={"userId": str(other), "user_id": str(user)})
    assert read_subscription(read_event(both)).metadata_user_id == user
    no_user = with_object(BASIL_UPDATED, metadata={"user_id": "", "userId": str(user)})
    assert read_subscription(read_event(no_user)).metadata_user_id == user


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": None}, "without status"),
        ({"customer": None}, "without id or customer"),
        ({"id": {"object": "subscription"}}, "without id or customer"),
        ({"object": "invoice"}, "is not a subscription"),
        ({"current_period_end": "tomorrow"}, "current_period_end: expected a Unix timestamp"),
        ({"current_period_end": 10**14}, "current_period_end is not a usable Unix timestamp"),
        ({"cancel_at": 10**14}, "cancel_at is not a usable"),
        ({"canceled_at": True}, "canceled_at: expected a Unix timestamp"),
        ({"ended_at": 10**14}, "ended_at is not a usable"),
        ({"trial_end": 10**14}, "trial_end is not a usable"),
        ({"items": [1]}, "items: expected an object, got list"),
        ({"items": {"data": "x"}}, "items.data: expected a list"),
        ({"items": {"data": ["si_1"]}}, r"items.data\[0\]: expected an object"),
        ({"metadata": ["user_id"]}, "metadata: expected an object"),
    ],
)
def test_a_malformed_snapshot_is_invalid_input_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    event = with_object(PRE_UPDATED, **change)
    with pytest.raises(InvalidInput, match=message) as caught:
        read_subscription(read_event(event))
    assert event["id"] in str(caught.value)


def test_a_basil_item_period_out_of_range_names_the_field() -> None:
    event = load(BASIL_UPDATED)
    event["data"]["object"]["items"]["data"][0]["current_period_start"] = 10**14
    with pytest.raises(InvalidInput, match="current_period_start"):
        read_subscription(read_event(event))


def test_values_the_database_judges_are_passed_as_sent() -> None:
    event = load(PRE_UPDATED)
    event["data"]["object"]["items"]["data"][0]["quantity"] = -1
    assert read_subscription(read_event(event)).quantity == -1


# -- checkout ---------------------------------------------------------------------


def test_checkout_names_the_client_reference_first_then_metadata() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    event = with_object(CHECKOUT, client_reference_id=str(first), metadata={"user_id": str(second)})
    checkout = read_checkout(read_event(event))
    assert checkout.customer_id == "cus_OV8zF7RMsBo1K1"
    assert checkout.named_user_ids == (first, second)


def test_checkout_of_the_real_app_names_the_user_adopted_from_its_cuid() -> None:
    checkout = read_checkout(read_event(load(CHECKOUT)))  # client_reference_id: the app's cuid
    assert checkout.named_user_ids == (legacy_uuid("cllnlqdff0d103i8tvi0yrx5b"),)


def test_checkout_names_its_subscription_and_the_apps_metadata_key() -> None:
    user = uuid.uuid4()
    checkout = read_checkout(
        read_event(with_object(CHECKOUT, client_reference_id=None, metadata={"userId": str(user)}))
    )
    assert checkout.subscription_id == "sub_1NiEd5CwEGCgBV8c3ON1VNaz"
    assert checkout.named_user_ids == (user,)
    expanded = with_object(CHECKOUT, subscription={"id": "sub_x", "object": "subscription"})
    assert read_checkout(read_event(expanded)).subscription_id == "sub_x"
    payment = with_object(CHECKOUT, mode="payment", subscription=None)
    assert read_checkout(read_event(payment)).subscription_id is None


def test_checkout_without_customer_or_metadata() -> None:
    event = with_object(CHECKOUT, customer=None, metadata=None, client_reference_id=None)
    assert read_checkout(read_event(event)) == stripe_payload.CheckoutSession(
        None, "sub_1NiEd5CwEGCgBV8c3ON1VNaz", ()
    )


# -- invoice payments ---------------------------------------------------------------


def test_a_real_paid_invoice_says_active() -> None:
    invoice = read_invoice(read_event(load(INVOICE_PAID)))  # pre-basil, amount_paid 100000
    assert invoice == InvoicePayment("sub_1NiEd5CwEGCgBV8c3ON1VNaz", "active")


def test_a_real_failed_payment_says_past_due() -> None:
    invoice = read_invoice(read_event(load(INVOICE_FAILED)))  # basil: parent.subscription_details
    assert invoice == InvoicePayment("sub_1234", "past_due")


@pytest.mark.parametrize("kind", ["invoice.paid", "invoice.payment_succeeded"])
def test_both_success_events_say_active(kind: str) -> None:
    event = load(INVOICE_PAID)
    event["type"] = kind
    assert read_invoice(read_event(event)).status == "active"
    assert is_invoice_event(kind)


def test_a_paid_invoice_of_nothing_says_nothing() -> None:
    """A trial's first invoice is paid, for 0: the subscription is trialing, not active."""
    free = read_invoice(read_event(with_object(INVOICE_PAID, amount_paid=0)))
    assert free == InvoicePayment("sub_1NiEd5CwEGCgBV8c3ON1VNaz", None)
    failed = read_invoice(read_event(with_object(INVOICE_FAILED, amount_paid=0)))
    assert failed.status == "past_due"  # a failed payment is one, whatever was paid


def test_an_invoice_of_no_subscription_says_nothing() -> None:
    event = with_object(INVOICE_PAID, subscription=None)
    assert read_invoice(read_event(event)) == InvoicePayment(None, None)


def test_other_invoice_events_are_not_payments() -> None:
    for kind in ("invoice.created", "invoice.finalized", "invoice.upcoming", "invoice.updated"):
        assert not is_invoice_event(kind)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"object": "subscription"}, "data.object is not an invoice"),
        ({"amount_paid": "100"}, "amount_paid: expected a whole amount, got '100'"),
        ({"amount_paid": None}, "amount_paid: expected a whole amount, got None"),
        ({"amount_paid": True}, "amount_paid: expected a whole amount"),
        ({"amount_paid": -1}, "amount_paid: expected a whole amount"),
        ({"amount_paid": 1.5}, "amount_paid: expected a whole amount"),
    ],
)
def test_a_malformed_paid_invoice_is_invalid_input_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    event = read_event(with_object(INVOICE_PAID, **change))
    with pytest.raises(InvalidInput, match=f"invoice.paid {event.id}: {message}"):
        read_invoice(event)


# -- the order of events ------------------------------------------------------------


def test_ranks_follow_the_lifecycle() -> None:
    rank = stripe_payload.event_rank
    assert rank("customer.subscription.created") == 0
    assert rank("customer.subscription.updated") == 1
    assert rank("customer.subscription.paused") == 1
    assert rank("customer.subscription.deleted") == 2
    assert stripe_payload.is_subscription_event("customer.subscription.trial_will_end")
    assert not stripe_payload.is_subscription_event("invoice.paid")


def _same_second(name: str, event_id: str) -> stripe_payload.Envelope:
    event = load(name)
    event.update(id=event_id, created=1_700_000_000)
    return read_event(event)


def test_within_one_second_the_lifecycle_orders_the_keys() -> None:
    # The ids sort against the lifecycle, so only the rank can order them.
    created = _same_second(BASIL_CREATED, "evt_z")
    updated = _same_second(BASIL_UPDATED, "evt_m")
    deleted = _same_second(BASIL_DELETED, "evt_a")
    for order in itertools.permutations([created, updated, deleted]):
        assert sorted(order, key=lambda e: e.ordering_key) == [created, updated, deleted]


def test_same_second_same_rank_ties_go_to_the_bytewise_greater_id() -> None:
    lower, upper = _same_second(BASIL_UPDATED, "evt_a"), _same_second(BASIL_UPDATED, "evt_B")
    assert max(lower, upper, key=lambda e: e.ordering_key).id == "evt_a"  # "B" < "a" in C
    assert lower.ordering_key > upper.ordering_key


def test_a_later_second_beats_any_rank() -> None:
    deleted = load(BASIL_DELETED)
    created = load(BASIL_CREATED)
    created["created"] = deleted["created"] + 1
    assert read_event(created).ordering_key > read_event(deleted).ordering_key


def test_timestamps() -> None:
    assert stripe_payload.timestamp(0, "t") == datetime(1970, 1, 1, tzinfo=UTC)
    assert stripe_payload.optional_timestamp(None, "t") is None
    with pytest.raises(InvalidInput, match=r"t: expected a Unix timestamp, got 1\.5"):
        stripe_payload.optional_timestamp(1.5, "t")
