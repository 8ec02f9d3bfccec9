"""What trampolin.subscriptions returns: subscriptions, event log rows, outcomes (pure).

Kept apart from the repository so that it stays short; trampolin.subscriptions
re-exports every name here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from trampolin.values import first_line

Outcome = Literal["applied", "duplicate", "stale", "ignored", "unmatched", "failed"]
#: Every outcome: 'pending' exists only inside the applying transaction, and
#: 'duplicate' is returned, never stored.
OUTCOMES: tuple[str, ...] = (
    "pending",
    "applied",
    "duplicate",
    "stale",
    "ignored",
    "unmatched",
    "failed",
)
#: The outcomes a committed event can have (`trampolin stripe events --outcome`).
RECORDED_OUTCOMES: tuple[str, ...] = ("applied", "stale", "ignored", "unmatched", "failed")
#: The outcomes ``replay`` tries again.
REPLAYABLE: tuple[str, ...] = ("unmatched", "failed")
#: The statuses that grant access (the queries take them as %(access_statuses)s); a
#: sign-up row (no Stripe subscription yet) grants it only until its trial_end.
ACCESS_STATUSES = frozenset({"active", "trialing", "past_due"})
MAX_EVENTS_LIMIT = 10_000


@dataclass(frozen=True)
class Subscription:
    """One row of ``subscriptions``: a Stripe subscription, or a sign-up trial not linked yet."""

    id: uuid.UUID
    user_id: uuid.UUID
    stripe_customer_id: str
    stripe_subscription_id: str | None  # None: a sign-up trial, before Stripe's subscription
    status: str
    price_id: str | None
    quantity: int | None
    interval: str | None
    interval_count: int | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    has_access: bool  # when read: its status grants access (a sign-up trial: until trial_end)


@dataclass(frozen=True)
class StripeEvent:
    """One row of the event log (without its payload)."""

    id: str
    type: str
    created: datetime
    api_version: str | None
    livemode: bool
    stripe_customer_id: str | None
    stripe_subscription_id: str | None
    outcome: str
    error: str | None
    received_at: datetime
    processed_at: datetime | None


def describe(exc: BaseException) -> str:
    """What a failed event's ``error`` says: the exception's type and first line."""
    name = type(exc).__name__
    return f"{name}: {first_line(exc)}" if str(exc).strip() else name
