"""Reading Stripe Refund and Charge objects (trampolin.stripe_refund; no database).

REFUND is the Refund object as Stripe's API reference shows it (docs.stripe.com/api/refunds/object);
the refund events are deliveries of tests/data/stripe (see its README).
"""

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe

from tests.stripe_support import CHARGE_REFUNDED, REFUND_CREATED, REFUND_FAILED, load
from trampolin.errors import InvalidInput
from trampolin.stripe_refund import (
    is_refund_event,
    read_refund,
    refunds_in_event,
    refunds_of_charge,
)

REFUND: dict[str, Any] = {
    "id": "re_1Nispe2eZvKYlo2Cd31jOCgZ",
    "object": "refund",
    "amount": 1000,
    "balance_transaction": "txn_1Nispe2eZvKYlo2CYezqFhEx",
    "charge": "ch_1NirD82eZvKYlo2CIvbtLWuY",
    "created": 1692942318,
    "currency": "usd",
    "destination_details": {
        "card": {"reference": "123456789012", "type": "refund"},
        "type": "card",
    },
    "metadata": {},
    "payment_intent": "pi_1GszsK2eZvKYlo2CfhZyoZLp",
    "reason": None,
    "receipt_number": None,
    "source_transfer_reversal": None,
    "status": "succeeded",
    "transfer_reversal": None,
}


def refund(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(REFUND)
    data.update(changes)
    return data


def test_the_documented_refund_object() -> None:
    data = read_refund(REFUND)
    assert data.stripe_refund_id == "re_1Nispe2eZvKYlo2Cd31jOCgZ"
    assert data.stripe_charge_id == "ch_1NirD82eZvKYlo2CIvbtLWuY"
    assert data.stripe_payment_intent_id == "pi_1GszsK2eZvKYlo2CfhZyoZLp"
    assert (data.amount, data.currency, data.status) == (1000, "usd", "succeeded")
    assert (data.reason, data.failure_reason, data.metadata) == (None, None, {})
    assert data.created == datetime(2023, 8, 25, 5, 45, 18, tzinfo=UTC)


def test_a_stripe_library_object_and_expanded_ids() -> None:
    obj = stripe.Refund.construct_from(
        refund(
            charge={"id": "ch_x", "object": "charge", "amount": 1000},
            payment_intent={"id": "pi_x", "object": "payment_intent"},
            reason="requested_by_customer",
            metadata={"admin_user": "admin@example.com"},
        ),
        "sk_test_x",
    )
    data = read_refund(obj)
    assert (data.stripe_charge_id, data.stripe_payment_intent_id) == ("ch_x", "pi_x")
    assert data.reason == "requested_by_customer"
    assert data.metadata == {"admin_user": "admin@example.com"}


def test_a_null_status_is_pending_and_a_failure_has_its_reason() -> None:
    assert read_refund(refund(status=None)).status == "pending"
    failed = read_refund(refund(status="failed", failure_reason="expired_or_canceled_card"))
    assert (failed.status, failed.failure_reason) == ("failed", "expired_or_canceled_card")
    assert read_refund(refund(charge=None, currency="EUR")).stripe_charge_id is None
    assert read_refund(refund(currency="EUR")).currency == "eur"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"object": "charge"}, "not a Stripe refund: object is 'charge'"),
        ({"id": None}, "has no id"),
        ({"id": ""}, "has no id"),
        ({"amount": -1}, "amount must be a non-negative integer"),
        ({"amount": "10"}, "amount must be a non-negative integer"),
        ({"amount": True}, "amount must be a non-negative integer"),
        ({"currency": "us"}, "three-letter code"),
        ({"status": "done"}, "unknown status 'done'"),
        ({"metadata": []}, "metadata must be an object"),
        ({"metadata": {"a": "\x00"}}, "NUL character"),
        ({"metadata": {"a": float("nan")}}, "not plain JSON"),
        ({"created": "yesterday"}, "created must be a Unix timestamp"),
        ({"created": 10**20}, "not a usable timestamp"),
        ({"reason": 5}, "reason must be a string"),
    ],
)
def test_malformed_refunds_name_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        read_refund(refund(**changes))


def test_not_an_object_at_all() -> None:
    with pytest.raises(InvalidInput, match="not a Stripe refund: str"):
        read_refund("re_123")


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    assert read_refund(refund(metadata={"a": "\\u0000"})).metadata == {"a": "\\u0000"}


def test_the_refunds_of_a_charge() -> None:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount_refunded": 1500,
        "refunds": {
            "object": "list",
            "data": [refund(id="re_a", charge=None), refund(id="re_b", charge="ch_1", amount=500)],
        },
    }
    found = refunds_of_charge(charge)
    assert [(r.stripe_refund_id, r.stripe_charge_id, r.amount) for r in found] == [
        ("re_a", "ch_1", 1000),
        ("re_b", "ch_1", 500),
    ]
    # Since API version 2022-11-15 a charge's refunds are not included unless expanded.
    assert refunds_of_charge({"id": "ch_1", "object": "charge", "amount_refunded": 10}) == []
    with pytest.raises(InvalidInput, match="not a Stripe charge"):
        refunds_of_charge(REFUND)


# -- refund events ----------------------------------------------------------------------

RE = "re_1Gib6ZHLwdCOCoR7VrzCnXlj"


def _refunds(name: str) -> list[tuple[str, str, str | None, int, str]]:
    event = load(name)
    found = refunds_in_event(event["type"], event["data"]["object"])
    return [
        (r.stripe_refund_id, r.status, r.failure_reason, r.amount, r.stripe_charge_id or "")
        for r in found
    ]


def test_a_real_refund_update_carries_the_failed_refund() -> None:
    assert _refunds(REFUND_FAILED) == [
        (RE, "failed", "expired_or_canceled_card", 30000000, "ch_1Gib61HLwdCOCoR71rnkccye")
    ]


def test_refund_created_and_charge_refunded_carry_it_earlier_in_its_life() -> None:
    earlier = [(RE, "succeeded", None, 30000000, "ch_1Gib61HLwdCOCoR71rnkccye")]
    assert _refunds(REFUND_CREATED) == earlier
    assert _refunds(CHARGE_REFUNDED) == earlier


def test_the_refund_events() -> None:
    for kind in (
        "refund.created",
        "refund.updated",
        "refund.failed",
        "charge.refund.updated",
        "charge.refunded",
    ):
        assert is_refund_event(kind)
    for kind in ("charge.succeeded", "charge.dispute.created", "refund", "payment_intent.canceled"):
        assert not is_refund_event(kind)


def test_a_charge_lists_its_refunds_by_id_and_each_once() -> None:
    charge = load(CHARGE_REFUNDED)["data"]["object"]
    charge["refunds"]["data"] = [refund(id="re_b"), refund(id="re_a"), refund(id="re_c")]
    found = refunds_in_event("charge.refunded", charge)
    assert [r.stripe_refund_id for r in found] == ["re_a", "re_b", "re_c"]
    charge["refunds"]["data"].append(refund(id="re_a"))
    with pytest.raises(InvalidInput, match="lists one refund twice"):
        refunds_in_event("charge.refunded", charge)


def test_charge_refunded_without_its_refunds_list_carries_none() -> None:
    """Since API version 2022-11-15 the Charge of charge.refunded leaves its refunds out."""
    charge = load(CHARGE_REFUNDED)["data"]["object"]
    del charge["refunds"]
    assert refunds_in_event("charge.refunded", charge) == []


@pytest.mark.parametrize(
    ("kind", "obj", "message"),
    [
        ("refund.updated", load(CHARGE_REFUNDED)["data"]["object"], "not a Stripe refund"),
        ("charge.refunded", REFUND, "not a Stripe charge"),
        ("refund.created", None, "not a Stripe refund: NoneType"),
        ("charge.refund.updated", refund(status="reversed"), "unknown status 'reversed'"),
    ],
)
def test_a_malformed_refund_event_is_invalid_input(kind: str, obj: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        refunds_in_event(kind, obj)
