"""Reading Stripe webhook events: the envelope, ids, the subscription snapshot, the order key.

Pure: no database here (tests/unit/test_stripe_payload.py runs without one).
Stripe renders an event at its endpoint's API version, so one reader takes both
shapes: before 2025-03-31 (basil) the billing period is on the subscription and
an invoice names its subscription directly; since basil the period is on each
item and the invoice names it under ``parent.subscription_details``. Any id may
arrive as a string or as the expanded object. Malformed input raises
InvalidInput naming the event and the field.

The stripe library is imported by :func:`parse_webhook` only, when it runs:
importing this module (and so ``trampolin migrate``) never loads it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from trampolin.errors import InvalidInput, InvalidSignature
from trampolin.values import text, user_key

if TYPE_CHECKING:
    import stripe

DEFAULT_TOLERANCE = 300
SUBSCRIPTION_EVENT_PREFIX = "customer.subscription."
CHECKOUT_COMPLETED = "checkout.session.completed"
# What a payment event says about the subscription its invoice bills.
INVOICE_EVENTS = {
    "invoice.paid": "active",
    "invoice.payment_succeeded": "active",
    "invoice.payment_failed": "past_due",
}
# The metadata keys that name a user: ours, and the app's (subscription_data.metadata.userId).
USER_ID_KEYS = ("user_id", "userId")
# Ties within one second follow the lifecycle: created < any other snapshot < deleted.
# Migration 0006 backfilled last_event_rank with the same numbers.
EVENT_RANKS = {"customer.subscription.created": 0, "customer.subscription.deleted": 2}
DEFAULT_EVENT_RANK = 1
# A NUL character as json.dumps writes it (and not an escaped backslash before "u0000").
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def parse_webhook(
    payload: bytes, sig_header: str, secret: str, *, tolerance: int = DEFAULT_TOLERANCE
) -> stripe.Event:
    """The verified event of a webhook request's raw body; InvalidSignature otherwise.

    ``payload`` must be the exact bytes Stripe sent: the signature covers them.
    """
    import stripe  # a heavy optional import: kept out of every other path

    try:
        event: stripe.Event = stripe.Webhook.construct_event(
            payload, sig_header, secret, tolerance=tolerance
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(
            f"Stripe webhook signature rejected: {exc.user_message or exc}"
        ) from None
    except Exception as exc:  # any other failure: not JSON, not UTF-8, not an object
        raise InvalidSignature(
            f"Stripe webhook body is not a Stripe event: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(_item(event, "id"), str) or not isinstance(_item(event, "type"), str):
        raise InvalidSignature("Stripe webhook body is not a Stripe event: no id or type")
    return event


def _item(obj: Any, key: str) -> Any:
    try:
        return obj[key]
    except (KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Envelope:
    """An event as plain JSON data, checked, with the ids it concerns."""

    id: str
    type: str
    created: datetime
    api_version: str | None
    livemode: bool
    customer_id: str | None
    subscription_id: str | None
    payload: dict[str, Any]
    payload_json: str  # the payload serialised once, as it is stored

    @property
    def data_object(self) -> dict[str, Any]:
        """``data.object``; InvalidInput if the event has none."""
        obj = _mapping(self.payload.get("data")).get("object")
        if not isinstance(obj, dict):
            raise InvalidInput(f"Stripe event {self.id} has no data.object")
        return obj

    @property
    def rank(self) -> int:
        return event_rank(self.type)

    @property
    def ordering_key(self) -> tuple[datetime, int, str]:
        """(created, rank, id): a subscription only moves to a greater key.

        Python compares the id by code point, which is the byte order of its
        UTF-8 text, as PostgreSQL's ``COLLATE "C"`` in sql/queries/subscriptions.sql.
        """
        return (self.created, self.rank, self.id)


def read_event(event: object) -> Envelope:
    """The envelope of a stripe.Event or of the event as a dict; InvalidInput if it is none."""
    if isinstance(event, Mapping):
        data = dict(event)
    elif callable(getattr(event, "to_dict", None)):
        data = event.to_dict(for_json=True)  # type: ignore[attr-defined]
    else:
        raise InvalidInput(f"not a Stripe event: {type(event).__name__}")
    event_id, kind, created = data.get("id"), data.get("type"), data.get("created")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidInput("Stripe event has no id")
    event_id = text("Stripe event id", event_id)
    if not isinstance(kind, str) or not kind:
        raise InvalidInput(f"Stripe event {event_id} has no type")
    if not isinstance(created, int) or isinstance(created, bool):
        raise InvalidInput(f"Stripe event {event_id} has no integer 'created'")
    try:
        payload_json = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"Stripe event {event_id} is not plain JSON data: {exc}") from None
    if "\\u0000" in payload_json and _JSON_NUL.search(payload_json):  # regex only if it may match
        raise InvalidInput(
            f"Stripe event {event_id} contains a NUL character, which PostgreSQL cannot store"
        )
    api_version = data.get("api_version")
    customer_id, subscription_id = _concerned_ids(data)
    return Envelope(
        id=event_id,
        type=text(f"Stripe event {event_id}: type", kind),
        created=timestamp(created, f"Stripe event {event_id}: 'created'"),
        api_version=api_version if isinstance(api_version, str) else None,
        livemode=data.get("livemode") is True,
        customer_id=customer_id,
        subscription_id=subscription_id,
        payload=data,
        payload_json=payload_json,
    )


def _concerned_ids(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """The customer and subscription an event's data.object names, where it does."""
    obj = _mapping(data.get("data")).get("object")
    if not isinstance(obj, dict):
        return None, None
    customer = stripe_id(obj.get("customer"))
    kind = obj.get("object")
    if kind == "subscription":
        return customer, stripe_id(obj.get("id"))
    if kind == "invoice":
        return customer, invoice_subscription_id(obj)
    return customer, stripe_id(obj.get("subscription"))


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills: ``subscription`` before basil, else under ``parent``."""
    if invoice.get("subscription") is not None:
        return stripe_id(invoice.get("subscription"))
    details = _mapping(_mapping(invoice.get("parent")).get("subscription_details"))
    return stripe_id(details.get("subscription"))


def stripe_id(value: object) -> str | None:
    """An id, whether Stripe sent it as a string or as the expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def metadata_user_id(metadata: Mapping[str, Any]) -> uuid.UUID | None:
    """The user a metadata object names under ``user_id``, else ``userId`` (the app's key)."""
    for key in USER_ID_KEYS:
        found = named_user_id(metadata.get(key))
        if found is not None:
            return found
    return None


def named_user_id(value: object) -> uuid.UUID | None:
    """The user id a string field names (client_reference_id, metadata.user_id), or None.

    A Prisma-era id (the app's cuid) names the user adopted from it (values.user_key).
    """
    if not isinstance(value, str) or not value:
        return None
    return user_key(value)


def timestamp(value: int, field: str) -> datetime:
    """A Unix timestamp as an aware datetime; InvalidInput naming ``field`` if out of range."""
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidInput(f"{field} is not a usable Unix timestamp: {value}") from None


def optional_timestamp(value: object, field: str) -> datetime | None:
    """timestamp(), or None for None; InvalidInput for anything but an integer."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{field}: expected a Unix timestamp, got {value!r}")
    return timestamp(value, field)


def is_subscription_event(event_type: str) -> bool:
    """customer.subscription.* events carry the whole subscription (a snapshot)."""
    return event_type.startswith(SUBSCRIPTION_EVENT_PREFIX)


def event_rank(event_type: str) -> int:
    """The tie-break between events of the same second (see EVENT_RANKS)."""
    return EVENT_RANKS.get(event_type, DEFAULT_EVENT_RANK)


@dataclass(frozen=True)
class SubscriptionSnapshot:
    """The columns of a subscription row, read from a customer.subscription.* event.

    Field names are the parameters of ``apply_snapshot`` in sql/queries/subscriptions.sql.
    """

    subscription_id: str
    customer_id: str
    status: str
    price_id: str | None
    quantity: Any  # these three as sent: the column types and checks judge them
    interval: Any
    interval_count: Any
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    metadata: dict[str, Any]
    metadata_user_id: uuid.UUID | None


def read_subscription(event: Envelope) -> SubscriptionSnapshot:
    """The subscription an event carries, in either API shape; InvalidInput if malformed."""
    where = f"{event.type} {event.id}"
    sub = event.data_object
    if sub.get("object") != "subscription":
        raise InvalidInput(f"{where}: data.object is not a subscription")
    sub_id, customer = stripe_id(sub.get("id")), stripe_id(sub.get("customer"))
    if sub_id is None or customer is None:
        raise InvalidInput(f"{where}: subscription without id or customer")
    status = "canceled" if event.type == "customer.subscription.deleted" else sub.get("status")
    if not isinstance(status, str):
        raise InvalidInput(f"{where}: subscription without status")
    item = _first_item(sub, where)
    recurring = _mapping(_mapping(item.get("price")).get("recurring")) or _mapping(item.get("plan"))
    # Before basil (2025-03-31) the period is on the subscription; since, on each item.
    on_sub = (
        sub.get("current_period_start") is not None or sub.get("current_period_end") is not None
    )
    period = sub if on_sub else item
    quantity = item.get("quantity")
    metadata = _mapping(sub.get("metadata"), f"{where}: metadata")

    def when(source: Mapping[str, Any], field: str) -> datetime | None:
        return optional_timestamp(source.get(field), f"{where}: {field}")

    return SubscriptionSnapshot(
        subscription_id=sub_id,
        customer_id=customer,
        status=status,
        price_id=stripe_id(item.get("price")) or stripe_id(item.get("plan")),
        quantity=sub.get("quantity") if quantity is None else quantity,
        interval=recurring.get("interval"),
        interval_count=recurring.get("interval_count"),
        current_period_start=when(period, "current_period_start"),
        current_period_end=when(period, "current_period_end"),
        cancel_at_period_end=sub.get("cancel_at_period_end") is True,
        cancel_at=when(sub, "cancel_at"),
        canceled_at=when(sub, "canceled_at"),
        ended_at=when(sub, "ended_at"),
        trial_start=when(sub, "trial_start"),
        trial_end=when(sub, "trial_end"),
        metadata=dict(metadata),
        metadata_user_id=metadata_user_id(metadata),
    )


def _first_item(sub: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """``items.data[0]``: price, plan, quantity and (since basil) the period."""
    items = _mapping(sub.get("items"), f"{where}: items").get("data")
    if items is None or items == []:
        return {}
    if not isinstance(items, list):
        raise InvalidInput(f"{where}: items.data: expected a list, got {type(items).__name__}")
    return _mapping(items[0], f"{where}: items.data[0]")


@dataclass(frozen=True)
class CheckoutSession:
    """What a checkout.session.completed event says about who the customer is."""

    customer_id: str | None
    subscription_id: str | None  # the subscription it started (mode subscription)
    named_user_ids: tuple[uuid.UUID, ...]  # client_reference_id first, then the metadata's


def read_checkout(event: Envelope) -> CheckoutSession:
    """The customer of a completed Checkout Session, its subscription and the user ids it names."""
    session = event.data_object
    named = (
        named_user_id(session.get("client_reference_id")),
        metadata_user_id(_mapping(session.get("metadata"))),
    )
    return CheckoutSession(
        customer_id=stripe_id(session.get("customer")),
        subscription_id=stripe_id(session.get("subscription")),
        named_user_ids=tuple(uid for uid in named if uid is not None),
    )


@dataclass(frozen=True)
class InvoicePayment:
    """What an invoice payment event says about the subscription its invoice bills."""

    subscription_id: str | None
    status: str | None  # 'active' (paid), 'past_due' (failed), or None: it says nothing


def is_invoice_event(event_type: str) -> bool:
    """invoice.paid, invoice.payment_succeeded, invoice.payment_failed."""
    return event_type in INVOICE_EVENTS


def read_invoice(event: Envelope) -> InvoicePayment:
    """The status an invoice payment event points its subscription to; InvalidInput if malformed.

    A paid invoice of nothing (a trial's first invoice, a full discount) proves
    nothing about the subscription, and an invoice of no subscription concerns none.
    """
    where = f"{event.type} {event.id}"
    invoice = event.data_object
    if invoice.get("object") != "invoice":
        raise InvalidInput(f"{where}: data.object is not an invoice")
    status: str | None = INVOICE_EVENTS[event.type]
    if status == "active":
        paid = invoice.get("amount_paid")
        if not isinstance(paid, int) or isinstance(paid, bool) or paid < 0:
            raise InvalidInput(f"{where}: amount_paid: expected a whole amount, got {paid!r}")
        if paid == 0:
            status = None
    subscription = invoice_subscription_id(invoice)
    return InvoicePayment(subscription, status if subscription else None)


def _mapping(value: object, field: str | None = None) -> Mapping[str, Any]:
    """``value`` if it is a JSON object; {} for null (or, without ``field``, for anything else).

    With ``field``, a value that is neither raises InvalidInput naming it.
    """
    if isinstance(value, dict):
        return value
    if value is None or field is None:
        return {}
    raise InvalidInput(f"{field}: expected an object, got {type(value).__name__}")
