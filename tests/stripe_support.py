"""The Stripe payloads the tests use (tests/data/stripe, see its README), and variants of them.

No database here: the unit tests of the payload readers and tests/test_subscriptions.py
and tests/test_refunds.py use it. Tests sign the bytes themselves with a made-up secret.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import stripe

DATA = Path(__file__).resolve().parent / "data" / "stripe"
SECRET = "whsec_test_0123456789abcdef"

PRE_UPDATED = "pre_basil_2024-06-20_customer.subscription.updated.json"
BASIL_CREATED = "basil_2025-06-30_customer.subscription.created.json"
BASIL_UPDATED = "basil_2025-08-27_customer.subscription.updated.json"
BASIL_DELETED = "derived_basil_2025-08-27_customer.subscription.deleted.json"
CHECKOUT = "pre_basil_2023-08-16_checkout.session.completed.json"
INVOICE_PAID = "pre_basil_2023-08-16_invoice.paid.json"
INVOICE_FAILED = "derived_basil_2025-03-31_invoice.payment_failed.json"
REFUND_CREATED = "derived_pre_basil_2020-03-02_refund.created.json"
CHARGE_REFUNDED = "derived_pre_basil_2020-03-02_charge.refunded.json"
REFUND_FAILED = "pre_basil_2020-03-02_charge.refund.updated.json"  # succeeded -> failed
ALL_FILES = sorted(p.name for p in DATA.glob("*.json"))


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def load(name: str) -> dict[str, Any]:
    return dict(json.loads(raw(name)))


def sign(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for ``payload``."""
    return str(
        stripe.WebhookSignature.generate_signature_header(
            payload.decode(), secret, timestamp=timestamp
        )
    )


def variant(
    name: str,
    *,
    event_id: str | None = None,
    created: int | None = None,
    event_type: str | None = None,
    customer: str | None = None,
    subscription_id: str | None = None,
    **object_fields: Any,
) -> dict[str, Any]:
    """A fixture with a few fields changed (the envelope, or the data object's fields)."""
    event = load(name)
    if event_id is not None:
        event["id"] = event_id
    if created is not None:
        event["created"] = created
    if event_type is not None:
        event["type"] = event_type
    obj = event["data"]["object"]
    if customer is not None:
        obj["customer"] = customer
    if subscription_id is not None:
        obj["id"] = subscription_id
    obj.update(object_fields)
    return event


def signed(event: dict[str, Any]) -> Any:
    """``event`` as the webhook endpoint gets it: serialised, signed, verified (a stripe.Event)."""
    from trampolin.stripe_payload import parse_webhook

    payload = json.dumps(event).encode()
    return parse_webhook(payload, sign(payload), SECRET)


def sub_id_of(name: str) -> str:
    return str(load(name)["data"]["object"]["id"])


def customer_of(name: str) -> str:
    return str(load(name)["data"]["object"]["customer"])
