"""Refunds: the audit row of each Stripe refund, with the admin who issued it.

``Refunds(conn)`` (and ``AsyncRefunds(aconn)``, awaited). ``record`` takes
the Refund object ``stripe.Refund.create`` returned (read by
trampolin.stripe_refund) and is idempotent on its id: call it again, or after
a Stripe event already made the row, and the one row is completed, never
duplicated, and its status never moved back. The admin is kept by id and by
e-mail, so deleting the admin later keeps the audit readable. Stripe's refund
events reach ``apply_stripe_event`` through ``Subscriptions.apply_stripe_event``;
sql/queries/refunds.sql gives the order both follow.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.types.json import Jsonb

from trampolin import queries
from trampolin.db import atomic
from trampolin.errors import InvalidInput, NotFound
from trampolin.stripe_refund import RefundData, read_refund
from trampolin.values import limit, optional_text, text, user_key

MAX_LIST = 1_000
MAX_NOTE_LENGTH = 2_000

_q = queries.load("refunds")


@dataclass(frozen=True)
class Refund:
    id: uuid.UUID
    stripe_refund_id: str
    stripe_charge_id: str | None
    stripe_payment_intent_id: str | None
    amount: int
    currency: str
    reason: str | None
    status: str
    failure_reason: str | None
    admin_user_id: uuid.UUID | None
    admin_email: str | None
    customer_email: str | None
    note: str | None
    metadata: dict[str, Any]
    stripe_created: datetime | None
    created_at: datetime
    updated_at: datetime


class AsyncRefunds:
    """Refunds on one psycopg connection."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn

    async def record(
        self,
        refund: object,
        *,
        admin_user_id: uuid.UUID | str,
        customer_email: str | None,
        note: str | None = None,
    ) -> Refund:
        """The stored refund, recorded from a Stripe Refund object (or its dict).

        NotFound if ``admin_user_id`` is no user; InvalidInput if ``refund``
        is not a readable Stripe refund.
        """
        data = read_refund(refund)
        admin = user_key(admin_user_id)
        if admin is None:
            raise NotFound(f"no user with id {admin_user_id!r}")
        params = {
            **_refund_params(data, event_id=None, event_created=None),
            "admin_user_id": admin,
            "customer_email": _optional_line("customer_email", customer_email, 320),
            "note": _optional_line("note", note, MAX_NOTE_LENGTH),
        }
        async with atomic(self.conn):
            row = await _q.record.one(self.conn, **params)
            if row is None:
                raise NotFound(
                    f"no user with id {str(admin_user_id)!r} (the admin who issued the refund)"
                )
            advanced = await _q.advance.one(self.conn, **params)
        return Refund(**(advanced or row))

    async def apply_stripe_event(
        self, refunds: Sequence[RefundData], *, event_id: str, event_created: datetime
    ) -> int:
        """How many of these refunds a Stripe event made or moved forward; in their order.

        For ``Subscriptions.apply_stripe_event``, which records the event in the
        same transaction: call that instead.
        """
        changed = 0
        async with atomic(self.conn):
            for refund in refunds:
                params = _refund_params(refund, event_id=event_id, event_created=event_created)
                made = await _q.insert_from_event.one(self.conn, **params)
                if made or await _q.advance.one(self.conn, **params):
                    changed += 1
        return changed

    async def get(self, stripe_refund_id: str) -> Refund | None:
        """The refund with that Stripe id, or None."""
        row = await _q.by_stripe_id.one(
            self.conn, stripe_refund_id=text("stripe_refund_id", stripe_refund_id)
        )
        return None if row is None else Refund(**row)

    async def list(self, *, limit: int = 100) -> builtins.list[Refund]:
        """The newest refunds first."""
        rows = await _q.list_refunds.many(self.conn, limit=_page(limit))
        return [Refund(**row) for row in rows]


def _refund_params(
    data: RefundData, *, event_id: str | None, event_created: datetime | None
) -> dict[str, Any]:
    """The refund's columns, and the event whose state they are (None: the admin's record)."""
    return {
        "stripe_refund_id": data.stripe_refund_id,
        "stripe_charge_id": data.stripe_charge_id,
        "stripe_payment_intent_id": data.stripe_payment_intent_id,
        "amount": data.amount,
        "currency": data.currency,
        "reason": data.reason,
        "status": data.status,
        "failure_reason": data.failure_reason,
        "metadata": Jsonb(data.metadata),
        "stripe_created": data.created,
        "event_id": event_id,
        "event_created": event_created,
    }


def _page(value: object) -> int:
    return limit(value, MAX_LIST)


def _optional_line(field: str, value: object, maximum: int) -> str | None:
    """Optional free text: stripped, None when empty, InvalidInput when too long."""
    given = optional_text(field, value)
    if given is None or not given.strip():
        return None
    if len(given) > maximum:
        raise InvalidInput(f"{field} is longer than {maximum} characters")
    return given.strip()


# -- Sync twins: generated from the Async classes above by tools/async_to_sync.py --


class Refunds:
    """Refunds on one psycopg connection."""

    def __init__(self, conn: Connection[Any]) -> None:
        self.conn = conn

    def record(
        self,
        refund: object,
        *,
        admin_user_id: uuid.UUID | str,
        customer_email: str | None,
        note: str | None = None,
    ) -> Refund:
        """The stored refund, recorded from a Stripe Refund object (or its dict).

        NotFound if ``admin_user_id`` is no user; InvalidInput if ``refund``
        is not a readable Stripe refund.
        """
        data = read_refund(refund)
        admin = user_key(admin_user_id)
        if admin is None:
            raise NotFound(f"no user with id {admin_user_id!r}")
        params = {
            **_refund_params(data, event_id=None, event_created=None),
            "admin_user_id": admin,
            "customer_email": _optional_line("customer_email", customer_email, 320),
            "note": _optional_line("note", note, MAX_NOTE_LENGTH),
        }
        with atomic(self.conn):
            row = _q.record.one(self.conn, **params)
            if row is None:
                raise NotFound(
                    f"no user with id {str(admin_user_id)!r} (the admin who issued the refund)"
                )
            advanced = _q.advance.one(self.conn, **params)
        return Refund(**(advanced or row))

    def apply_stripe_event(
        self, refunds: Sequence[RefundData], *, event_id: str, event_created: datetime
    ) -> int:
        """How many of these refunds a Stripe event made or moved forward; in their order.

        For ``Subscriptions.apply_stripe_event``, which records the event in the
        same transaction: call that instead.
        """
        changed = 0
        with atomic(self.conn):
            for refund in refunds:
                params = _refund_params(refund, event_id=event_id, event_created=event_created)
                made = _q.insert_from_event.one(self.conn, **params)
                if made or _q.advance.one(self.conn, **params):
                    changed += 1
        return changed

    def get(self, stripe_refund_id: str) -> Refund | None:
        """The refund with that Stripe id, or None."""
        row = _q.by_stripe_id.one(
            self.conn, stripe_refund_id=text("stripe_refund_id", stripe_refund_id)
        )
        return None if row is None else Refund(**row)

    def list(self, *, limit: int = 100) -> builtins.list[Refund]:
        """The newest refunds first."""
        rows = _q.list_refunds.many(self.conn, limit=_page(limit))
        return [Refund(**row) for row in rows]
