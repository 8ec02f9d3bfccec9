"""Stripe Refund and Charge objects read into the columns of ``refunds`` (pure, no database).

A refund arrives as the object ``stripe.Refund.create`` returns (an admin's
refund), as ``data.object`` of refund.created / refund.updated / refund.failed /
charge.refund.updated events, or inside a Charge (``charge.refunded``) when
its ``refunds`` list is included. Ids may come as strings or as expanded
objects; ``status`` may be null (Stripe's docs), which reads as 'pending'.
Anything else malformed raises InvalidInput naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from trampolin.errors import InvalidInput
from trampolin.values import is_int, text

STATUSES = ("pending", "requires_action", "succeeded", "failed", "canceled")
# The events about refunds: each carries one Refund object, but charge.refunded
# carries the Charge, which lists its refunds (before API version 2022-11-15 only).
REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)
CHARGE_REFUNDED = "charge.refunded"
MAX_AMOUNT = 2**63 - 1
# A NUL character as json.dumps writes it (not an escaped backslash before "u0000").
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


@dataclass(frozen=True)
class RefundData:
    """One Stripe refund as plain values."""

    stripe_refund_id: str
    stripe_charge_id: str | None
    stripe_payment_intent_id: str | None
    amount: int
    currency: str
    reason: str | None
    status: str
    failure_reason: str | None
    metadata: dict[str, Any]
    created: datetime | None


def plain(obj: object, what: str) -> dict[str, Any]:
    """A Stripe object (or a dict) as plain JSON data; InvalidInput if it is neither."""
    if isinstance(obj, Mapping):
        data = dict(obj)
    elif callable(getattr(obj, "to_dict", None)):
        data = obj.to_dict()  # type: ignore[attr-defined]
    else:
        raise InvalidInput(f"not a Stripe {what}: {type(obj).__name__}")
    if not isinstance(data, dict):
        raise InvalidInput(f"not a Stripe {what}: {type(data).__name__}")
    return data


def read_refund(obj: object) -> RefundData:
    """The refund a Stripe Refund object describes."""
    data = plain(obj, "refund")
    if data.get("object", "refund") != "refund":
        raise InvalidInput(f"not a Stripe refund: object is {data.get('object')!r}")
    refund_id = _id(data.get("id"))
    if refund_id is None:
        raise InvalidInput("Stripe refund has no id")
    where = f"Stripe refund {refund_id}"
    amount = data.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= MAX_AMOUNT:
        raise InvalidInput(f"{where}: amount must be a non-negative integer, not {amount!r}")
    currency = data.get("currency")
    if (
        not isinstance(currency, str)
        or len(currency) != 3
        or not (currency.isascii() and currency.isalpha())
    ):
        raise InvalidInput(f"{where}: currency must be a three-letter code, not {currency!r}")
    status = data.get("status") or "pending"
    if status not in STATUSES:
        raise InvalidInput(f"{where}: unknown status {status!r} (one of {', '.join(STATUSES)})")
    metadata = data.get("metadata")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise InvalidInput(f"{where}: metadata must be an object")
    return RefundData(
        stripe_refund_id=refund_id,
        stripe_charge_id=_id(data.get("charge")),
        stripe_payment_intent_id=_id(data.get("payment_intent")),
        amount=amount,
        currency=currency.lower(),
        reason=_optional(where, "reason", data.get("reason")),
        status=status,
        failure_reason=_optional(where, "failure_reason", data.get("failure_reason")),
        metadata=_json_safe(where, metadata),
        created=_time(where, data.get("created")),
    )


def refunds_of_charge(obj: object) -> list[RefundData]:
    """The refunds a Stripe Charge object lists (none when its ``refunds`` is not included)."""
    data = plain(obj, "charge")
    if data.get("object", "charge") != "charge":
        raise InvalidInput(f"not a Stripe charge: object is {data.get('object')!r}")
    listed = data.get("refunds")
    items = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(items, list):
        return []
    charge_id = _id(data.get("id"))
    refunds = [read_refund(item) for item in items]
    return [r if r.stripe_charge_id else replace(r, stripe_charge_id=charge_id) for r in refunds]


def is_refund_event(event_type: str) -> bool:
    """refund.created / .updated / .failed, charge.refund.updated, charge.refunded."""
    return event_type in REFUND_EVENTS or event_type == CHARGE_REFUNDED


def refunds_in_event(event_type: str, obj: object) -> list[RefundData]:
    """The refunds a refund event's data.object holds, by id (the order their rows are locked in).

    InvalidInput if one is malformed or a charge lists a refund twice.
    """
    refunds = refunds_of_charge(obj) if event_type == CHARGE_REFUNDED else [read_refund(obj)]
    by_id = {r.stripe_refund_id: r for r in refunds}
    if len(by_id) < len(refunds):
        raise InvalidInput("a Stripe charge lists one refund twice")
    return [by_id[key] for key in sorted(by_id)]


def _id(value: object) -> str | None:
    """An id, whether Stripe sent it as a string or as an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, str) and value.strip():
        return text("Stripe id", value)
    return None


def _optional(where: str, field: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    return text(f"{where}: {field}", value)


def _time(where: str, value: object) -> datetime | None:
    if value is None:
        return None
    if not is_int(value):
        raise InvalidInput(f"{where}: created must be a Unix timestamp, not {value!r}")
    try:
        return datetime.fromtimestamp(value, tz=UTC)  # type: ignore[arg-type]
    except (ValueError, OverflowError, OSError):
        raise InvalidInput(f"{where}: created is not a usable timestamp: {value}") from None


def _json_safe(where: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` if PostgreSQL's jsonb can hold it (plain JSON, no NUL character)."""
    try:
        dumped = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{where}: metadata is not plain JSON data: {exc}") from None
    if _JSON_NUL.search(dumped):
        raise InvalidInput(f"{where}: metadata contains a NUL character")
    return metadata
