"""Stripe webhook events -> subscriptions and refunds: record, apply in order, link, replay.

``AsyncSubscriptions(aconn)`` is written here; ``Subscriptions(conn)`` is its generated
twin. Each event is recorded in ``stripe_events`` with its effect, in ``db.atomic``. A
subscription moves only forward along the events' ordering key, so duplicates and older
events change nothing (sql/queries/subscriptions.sql says how); invoice payment events
are kept beside the newest snapshot; refund events go to trampolin.refunds. A user's
sign-up row becomes the row of the first Stripe subscription that appears for them.
``unmatched`` events (no user for the customer yet) are replayed when it is linked;
``failed`` ones keep their error and are tried again. Reading the payloads is
trampolin.stripe_payload's and trampolin.stripe_refund's job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import fields
from typing import Any, cast

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg.types.json import Jsonb

from trampolin import queries
from trampolin.db import atomic
from trampolin.errors import Conflict, InvalidInput, NotFound
from trampolin.refunds import AsyncRefunds, Refunds
from trampolin.stripe_payload import (
    CHECKOUT_COMPLETED,
    DEFAULT_TOLERANCE,
    CheckoutSession,
    Envelope,
    is_invoice_event,
    is_subscription_event,
    parse_webhook,
    read_checkout,
    read_event,
    read_invoice,
    read_subscription,
)
from trampolin.stripe_refund import is_refund_event, refunds_in_event
from trampolin.subscription_records import (
    ACCESS_STATUSES,
    MAX_EVENTS_LIMIT,
    OUTCOMES,
    RECORDED_OUTCOMES,
    REPLAYABLE,
    Outcome,
    StripeEvent,
    Subscription,
    describe,
)
from trampolin.values import integer, text, user_key

__all__ = [
    "ACCESS_STATUSES",
    "DEFAULT_TOLERANCE",
    "MAX_EVENTS_LIMIT",
    "OUTCOMES",
    "RECORDED_OUTCOMES",
    "REPLAYABLE",
    "AsyncSubscriptions",
    "Outcome",
    "StripeEvent",
    "Subscription",
    "Subscriptions",
    "parse_webhook",
]

_q = queries.load("subscriptions")
_ACCESS_STATUS_LIST = sorted(ACCESS_STATUSES)  # as a query parameter


class AsyncSubscriptions:
    """Subscriptions and the Stripe event log on one connection."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn

    # -- events in ---------------------------------------------------------

    async def apply_stripe_event(self, event: Any) -> Outcome:
        """Record and apply one event (a stripe.Event or the event as a dict).

        Returns 'applied', 'duplicate', 'stale', 'ignored', 'unmatched', or
        'failed' when applying raised (the effect is rolled back, the event is
        kept with the error; the next delivery of it tries again).
        InvalidInput if it is no event.
        """
        return await self._process(read_event(event), retry=("failed",))

    async def _process(self, event: Envelope, *, retry: tuple[str, ...]) -> Outcome:
        """Record and apply; ``retry``: the stored outcomes that do not make it a duplicate.

        A new kind of event gets a branch here and its reader in stripe_payload.
        """
        try:
            if is_subscription_event(event.type):
                return await self._apply_to_row(_q.apply_snapshot, _snapshot_params(event), retry)
            invoice = read_invoice(event) if is_invoice_event(event.type) else None
            if invoice is not None and invoice.status is not None:
                params = {**_event_params(event), "invoice_status": invoice.status}
                return await self._apply_to_row(_q.apply_invoice, params, retry)
            async with atomic(self.conn):
                if is_refund_event(event.type):
                    return await self._apply_refunds(event, retry)
                if event.type == CHECKOUT_COMPLETED:
                    return await self._apply_checkout(event, retry)
                return await self._record(event, "ignored", retry)  # and payments of nothing
        except Exception as exc:
            return await self._record_failure(event, retry, exc)

    async def _record_failure(
        self, event: Envelope, retry: tuple[str, ...], exc: Exception
    ) -> Outcome:
        """Record that applying raised (its effect was rolled back) and say 'failed'."""
        if self.conn.closed or self.conn.broken:
            raise exc  # the connection is gone: nothing can be recorded
        async with atomic(self.conn):
            return await self._record(event, "failed", retry, error=describe(exc))

    async def _record(
        self, event: Envelope, outcome: str, retry: tuple[str, ...], *, error: str | None = None
    ) -> Outcome:
        row = await _q.record_event.one(
            self.conn, **_event_params(event), outcome=outcome, error=error, retry=list(retry)
        )
        return cast(Outcome, row["outcome"]) if row else "duplicate"

    async def _apply_to_row(
        self, statement: queries.Query, params: dict[str, Any], retry: tuple[str, ...]
    ) -> Outcome:
        """A snapshot (apply_snapshot) or a payment (apply_invoice): record it and apply
        it to its subscription's row."""
        async with atomic(self.conn):
            outcome = await self._apply_linking(statement, params, retry)
            if outcome == "unmatched" and params["customer_id"] is not None:
                # Decide again under the customer lock, which a link holds until it
                # commits: either this now sees the link, or the link's replay sees this.
                await _q.lock_customer.exec(self.conn, customer_id=params["customer_id"])
                outcome = await self._apply_linking(statement, params, ("unmatched",))
                if outcome == "duplicate":  # a link's replay got to it first
                    recorded = await self.event(params["event_id"])
                    outcome = cast(Outcome, recorded.outcome if recorded else "unmatched")
            return outcome

    async def _apply_linking(
        self, statement: queries.Query, params: dict[str, Any], retry: tuple[str, ...]
    ) -> Outcome:
        """Run the statement; if it says 'link', the user's sign-up row becomes the new
        subscription's row first (link_trial), and it runs again."""
        row = await statement.one(self.conn, **params, retry=list(retry), may_link=True)
        assert row is not None  # the statement always returns its outcome
        if row["outcome"] == "link":
            await _q.link_trial.execrows(
                self.conn,
                user_id=row["user_id"],
                subscription_id=params["subscription_id"],
                customer_id=params["customer_id"],
            )
            row = await statement.one(self.conn, **params, retry=list(retry), may_link=False)
            assert row is not None
        return cast(Outcome, row["outcome"])

    async def _apply_refunds(self, event: Envelope, retry: tuple[str, ...]) -> Outcome:
        """refund.*, charge.refund.updated, charge.refunded: make or move the refunds' rows.

        A refund no admin recorded yet gets its row without an admin (record() adds it).
        """
        refunds = refunds_in_event(event.type, event.data_object)
        if not refunds:  # charge.refunded at API versions that leave its refunds out
            return await self._record(event, "ignored", retry)
        if await self._record(event, "pending", retry) == "duplicate":
            return "duplicate"
        changed = await AsyncRefunds(self.conn).apply_stripe_event(
            refunds, event_id=event.id, event_created=event.created
        )
        outcome: Outcome = "applied" if changed else "stale"
        await _q.set_outcome.exec(self.conn, event_id=event.id, outcome=outcome)
        return outcome

    async def _apply_checkout(self, event: Envelope, retry: tuple[str, ...]) -> Outcome:
        """checkout.session.completed: link its customer and subscription to their user.

        The user: the one it names, else the one its subscription or the sign-up
        row of its customer belongs to, else the one the customer is linked to.
        """
        checkout = read_checkout(event)
        customer = checkout.customer_id
        if customer is None:
            return await self._record(event, "ignored", retry)
        if await self._record(event, "pending", retry) == "duplicate":
            return "duplicate"
        await _q.lock_customer.exec(self.conn, customer_id=customer)
        found = await _q.first_named_user.one(self.conn, user_ids=list(checkout.named_user_ids))
        found = found or await _q.checkout_owner.one(
            self.conn, customer_id=customer, subscription_id=checkout.subscription_id
        )
        owner = found or await _q.customer_owner.one(self.conn, customer_id=customer)
        outcome: Outcome = "unmatched"
        if owner is not None:
            await self._link(owner["id"], customer)  # the user row first, as deliveries lock
            linked = await self._link_trial(owner["id"], checkout)
            outcome = "applied" if found or linked else "ignored"
        await _q.set_outcome.exec(self.conn, event_id=event.id, outcome=outcome)
        return outcome

    async def _link_trial(self, user_id: uuid.UUID, checkout: CheckoutSession) -> bool:
        """Make the user's sign-up row the row of the checkout's subscription, if it has none."""
        if checkout.subscription_id is None:
            return False
        linked = await _q.link_trial.execrows(
            self.conn,
            user_id=user_id,
            subscription_id=checkout.subscription_id,
            customer_id=checkout.customer_id,
        )
        return linked > 0

    # -- linking and replay -------------------------------------------------

    async def link_customer(
        self, user_id: uuid.UUID | str, stripe_customer_id: str
    ) -> dict[str, str]:
        """Link a Stripe customer to a user and replay that customer's unmatched events.

        Returns each replayed event id with its new outcome. NotFound for an
        unknown user; Conflict if the customer belongs to another user.
        """
        uid = user_key(user_id)
        if uid is None:
            raise InvalidInput(f"not a user id: {user_id!r}")
        customer = text("stripe_customer_id", stripe_customer_id)
        if not customer:
            raise InvalidInput("empty Stripe customer id")
        async with atomic(self.conn):
            await _q.lock_customer.exec(self.conn, customer_id=customer)
            return await self._link(uid, customer)

    async def _link(self, user_id: uuid.UUID, customer: str) -> dict[str, str]:
        """Link under the customer lock (held by the caller), then replay."""
        owner = await _q.customer_owner.one(self.conn, customer_id=customer)
        if owner is not None and owner["id"] != user_id:
            raise Conflict(f"Stripe customer {customer} is already linked to user {owner['id']}")
        if owner is None:
            try:
                changed = await _q.set_user_customer.execrows(
                    self.conn, user_id=user_id, customer_id=customer
                )
            except psycopg.errors.UniqueViolation:  # linked behind our back, without the lock
                raise Conflict(
                    f"Stripe customer {customer} is already linked to another user"
                ) from None
            if not changed:
                raise NotFound(f"no user {user_id}")
        replayed: dict[str, str] = {}
        for row in await _q.lock_unmatched_for_customer.many(self.conn, customer_id=customer):
            replayed[row["id"]] = await self._process(
                read_event(row["payload"]), retry=("unmatched",)
            )
        return replayed

    async def replay(
        self,
        outcome: str = "unmatched",
        *,
        limit: int | None = None,
        on_event: Callable[[str, str], None] | None = None,
    ) -> dict[str, str]:
        """Apply again the recorded events with that outcome ('unmatched' or 'failed').

        Oldest first, each in its own transaction; an event another replay is
        holding is skipped. Returns each event id with its new outcome, and
        tells ``on_event`` of each as it goes.
        """
        if outcome not in REPLAYABLE:
            raise InvalidInput(f"can only replay {' or '.join(REPLAYABLE)} events, not {outcome!r}")
        if limit is not None:
            limit = integer("limit", limit, minimum=1)
        replayed: dict[str, str] = {}
        for row in await _q.event_ids_with_outcome.many(self.conn, outcome=outcome, limit=limit):
            result = await self._replay_one(row["id"], outcome)
            if result is None:
                continue  # replayed meanwhile, or held by another replay
            replayed[row["id"]] = result
            if on_event is not None:
                on_event(row["id"], result)
        return replayed

    async def _replay_one(self, event_id: str, outcome: str) -> Outcome | None:
        """The event's new outcome; None if it no longer has ``outcome`` or another holds it."""
        async with atomic(self.conn):
            locked = await _q.lock_event_with_outcome.one(
                self.conn, event_id=event_id, outcome=outcome
            )
            if locked is None:
                return None
            return await self._process(read_event(locked["payload"]), retry=(outcome,))

    # -- reading ----------------------------------------------------------

    async def get_for_user(self, user_id: uuid.UUID | str) -> Subscription | None:
        """The user's current subscription (one that grants access first), or None."""
        uid = user_key(user_id)
        if uid is None:
            return None
        row = await _q.subscription_for_user.one(
            self.conn, user_id=uid, access_statuses=_ACCESS_STATUS_LIST
        )
        return Subscription(**row) if row else None

    async def get_by_stripe_id(self, stripe_subscription_id: str) -> Subscription | None:
        """The subscription with that Stripe id, or None."""
        row = await _q.subscription_by_stripe_id.one(
            self.conn,
            stripe_subscription_id=text("stripe_subscription_id", stripe_subscription_id),
            access_statuses=_ACCESS_STATUS_LIST,
        )
        return Subscription(**row) if row else None

    async def has_access(self, user_id: uuid.UUID | str) -> bool:
        """True if the user has an active, trialing or past_due subscription.

        A sign-up trial (no Stripe subscription yet) counts until its trial_end.
        """
        uid = user_key(user_id)
        if uid is None:
            return False
        row = await _q.has_access.one(self.conn, user_id=uid, access_statuses=_ACCESS_STATUS_LIST)
        return bool(row and row["has_access"])

    async def events(self, outcome: str | None = None, limit: int = 100) -> list[StripeEvent]:
        """Recorded events, newest first; only those with ``outcome`` if given."""
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidInput(f"unknown outcome {outcome!r} (one of {', '.join(OUTCOMES)})")
        page = integer("limit", limit, minimum=1, maximum=MAX_EVENTS_LIMIT)
        rows = await _q.events.many(self.conn, outcome=outcome, limit=page)
        return [StripeEvent(**row) for row in rows]

    async def event(self, event_id: str) -> StripeEvent | None:
        """One recorded event, or None."""
        row = await _q.event_by_id.one(self.conn, event_id=text("event_id", event_id))
        return StripeEvent(**row) if row else None

    async def event_payload(self, event_id: str) -> dict[str, Any] | None:
        """The event exactly as received, or None."""
        row = await _q.event_payload.one(self.conn, event_id=text("event_id", event_id))
        return cast(dict[str, Any], row["payload"]) if row else None


def _event_params(event: Envelope) -> dict[str, Any]:
    """The parameters that record an event (record_event, apply_snapshot, apply_invoice)."""
    return {
        "event_id": event.id,
        "type": event.type,
        "created": event.created,
        "api_version": event.api_version,
        "livemode": event.livemode,
        "customer_id": event.customer_id,
        "subscription_id": event.subscription_id,
        # Serialised once, by read_event; the same text is stored.
        "payload": Jsonb(event.payload, dumps=lambda _: event.payload_json),
    }


def _snapshot_params(event: Envelope) -> dict[str, Any]:
    """The parameters of apply_snapshot: the event, its rank, the subscription it carries."""
    snapshot = read_subscription(event)
    # A shallow copy of the fields: dataclasses.asdict would deep-copy each value.
    columns = {field.name: getattr(snapshot, field.name) for field in fields(snapshot)}
    columns["metadata"] = Jsonb(snapshot.metadata)
    return {**_event_params(event), **columns, "rank": event.rank}


# -- Sync twins: generated from the Async classes above by tools/async_to_sync.py --


class Subscriptions:
    """Subscriptions and the Stripe event log on one connection."""

    def __init__(self, conn: Connection[Any]) -> None:
        self.conn = conn

    # -- events in ---------------------------------------------------------

    def apply_stripe_event(self, event: Any) -> Outcome:
        """Record and apply one event (a stripe.Event or the event as a dict).

        Returns 'applied', 'duplicate', 'stale', 'ignored', 'unmatched', or
        'failed' when applying raised (the effect is rolled back, the event is
        kept with the error; the next delivery of it tries again).
        InvalidInput if it is no event.
        """
        return self._process(read_event(event), retry=("failed",))

    def _process(self, event: Envelope, *, retry: tuple[str, ...]) -> Outcome:
        """Record and apply; ``retry``: the stored outcomes that do not make it a duplicate.

        A new kind of event gets a branch here and its reader in stripe_payload.
        """
        try:
            if is_subscription_event(event.type):
                return self._apply_to_row(_q.apply_snapshot, _snapshot_params(event), retry)
            invoice = read_invoice(event) if is_invoice_event(event.type) else None
            if invoice is not None and invoice.status is not None:
                params = {**_event_params(event), "invoice_status": invoice.status}
                return self._apply_to_row(_q.apply_invoice, params, retry)
            with atomic(self.conn):
                if is_refund_event(event.type):
                    return self._apply_refunds(event, retry)
                if event.type == CHECKOUT_COMPLETED:
                    return self._apply_checkout(event, retry)
                return self._record(event, "ignored", retry)  # and payments of nothing
        except Exception as exc:
            return self._record_failure(event, retry, exc)

    def _record_failure(self, event: Envelope, retry: tuple[str, ...], exc: Exception) -> Outcome:
        """Record that applying raised (its effect was rolled back) and say 'failed'."""
        if self.conn.closed or self.conn.broken:
            raise exc  # the connection is gone: nothing can be recorded
        with atomic(self.conn):
            return self._record(event, "failed", retry, error=describe(exc))

    def _record(
        self, event: Envelope, outcome: str, retry: tuple[str, ...], *, error: str | None = None
    ) -> Outcome:
        row = _q.record_event.one(
            self.conn, **_event_params(event), outcome=outcome, error=error, retry=list(retry)
        )
        return cast(Outcome, row["outcome"]) if row else "duplicate"

    def _apply_to_row(
        self, statement: queries.Query, params: dict[str, Any], retry: tuple[str, ...]
    ) -> Outcome:
        """A snapshot (apply_snapshot) or a payment (apply_invoice): record it and apply
        it to its subscription's row."""
        with atomic(self.conn):
            outcome = self._apply_linking(statement, params, retry)
            if outcome == "unmatched" and params["customer_id"] is not None:
                # Decide again under the customer lock, which a link holds until it
                # commits: either this now sees the link, or the link's replay sees this.
                _q.lock_customer.exec(self.conn, customer_id=params["customer_id"])
                outcome = self._apply_linking(statement, params, ("unmatched",))
                if outcome == "duplicate":  # a link's replay got to it first
                    recorded = self.event(params["event_id"])
                    outcome = cast(Outcome, recorded.outcome if recorded else "unmatched")
            return outcome

    def _apply_linking(
        self, statement: queries.Query, params: dict[str, Any], retry: tuple[str, ...]
    ) -> Outcome:
        """Run the statement; if it says 'link', the user's sign-up row becomes the new
        subscription's row first (link_trial), and it runs again."""
        row = statement.one(self.conn, **params, retry=list(retry), may_link=True)
        assert row is not None  # the statement always returns its outcome
        if row["outcome"] == "link":
            _q.link_trial.execrows(
                self.conn,
                user_id=row["user_id"],
                subscription_id=params["subscription_id"],
                customer_id=params["customer_id"],
            )
            row = statement.one(self.conn, **params, retry=list(retry), may_link=False)
            assert row is not None
        return cast(Outcome, row["outcome"])

    def _apply_refunds(self, event: Envelope, retry: tuple[str, ...]) -> Outcome:
        """refund.*, charge.refund.updated, charge.refunded: make or move the refunds' rows.

        A refund no admin recorded yet gets its row without an admin (record() adds it).
        """
        refunds = refunds_in_event(event.type, event.data_object)
        if not refunds:  # charge.refunded at API versions that leave its refunds out
            return self._record(event, "ignored", retry)
        if self._record(event, "pending", retry) == "duplicate":
            return "duplicate"
        changed = Refunds(self.conn).apply_stripe_event(
            refunds, event_id=event.id, event_created=event.created
        )
        outcome: Outcome = "applied" if changed else "stale"
        _q.set_outcome.exec(self.conn, event_id=event.id, outcome=outcome)
        return outcome

    def _apply_checkout(self, event: Envelope, retry: tuple[str, ...]) -> Outcome:
        """checkout.session.completed: link its customer and subscription to their user.

        The user: the one it names, else the one its subscription or the sign-up
        row of its customer belongs to, else the one the customer is linked to.
        """
        checkout = read_checkout(event)
        customer = checkout.customer_id
        if customer is None:
            return self._record(event, "ignored", retry)
        if self._record(event, "pending", retry) == "duplicate":
            return "duplicate"
        _q.lock_customer.exec(self.conn, customer_id=customer)
        found = _q.first_named_user.one(self.conn, user_ids=list(checkout.named_user_ids))
        found = found or _q.checkout_owner.one(
            self.conn, customer_id=customer, subscription_id=checkout.subscription_id
        )
        owner = found or _q.customer_owner.one(self.conn, customer_id=customer)
        outcome: Outcome = "unmatched"
        if owner is not None:
            self._link(owner["id"], customer)  # the user row first, as deliveries lock
            linked = self._link_trial(owner["id"], checkout)
            outcome = "applied" if found or linked else "ignored"
        _q.set_outcome.exec(self.conn, event_id=event.id, outcome=outcome)
        return outcome

    def _link_trial(self, user_id: uuid.UUID, checkout: CheckoutSession) -> bool:
        """Make the user's sign-up row the row of the checkout's subscription, if it has none."""
        if checkout.subscription_id is None:
            return False
        linked = _q.link_trial.execrows(
            self.conn,
            user_id=user_id,
            subscription_id=checkout.subscription_id,
            customer_id=checkout.customer_id,
        )
        return linked > 0

    # -- linking and replay -------------------------------------------------

    def link_customer(self, user_id: uuid.UUID | str, stripe_customer_id: str) -> dict[str, str]:
        """Link a Stripe customer to a user and replay that customer's unmatched events.

        Returns each replayed event id with its new outcome. NotFound for an
        unknown user; Conflict if the customer belongs to another user.
        """
        uid = user_key(user_id)
        if uid is None:
            raise InvalidInput(f"not a user id: {user_id!r}")
        customer = text("stripe_customer_id", stripe_customer_id)
        if not customer:
            raise InvalidInput("empty Stripe customer id")
        with atomic(self.conn):
            _q.lock_customer.exec(self.conn, customer_id=customer)
            return self._link(uid, customer)

    def _link(self, user_id: uuid.UUID, customer: str) -> dict[str, str]:
        """Link under the customer lock (held by the caller), then replay."""
        owner = _q.customer_owner.one(self.conn, customer_id=customer)
        if owner is not None and owner["id"] != user_id:
            raise Conflict(f"Stripe customer {customer} is already linked to user {owner['id']}")
        if owner is None:
            try:
                changed = _q.set_user_customer.execrows(
                    self.conn, user_id=user_id, customer_id=customer
                )
            except psycopg.errors.UniqueViolation:  # linked behind our back, without the lock
                raise Conflict(
                    f"Stripe customer {customer} is already linked to another user"
                ) from None
            if not changed:
                raise NotFound(f"no user {user_id}")
        replayed: dict[str, str] = {}
        for row in _q.lock_unmatched_for_customer.many(self.conn, customer_id=customer):
            replayed[row["id"]] = self._process(read_event(row["payload"]), retry=("unmatched",))
        return replayed

    def replay(
        self,
        outcome: str = "unmatched",
        *,
        limit: int | None = None,
        on_event: Callable[[str, str], None] | None = None,
    ) -> dict[str, str]:
        """Apply again the recorded events with that outcome ('unmatched' or 'failed').

        Oldest first, each in its own transaction; an event another replay is
        holding is skipped. Returns each event id with its new outcome, and
        tells ``on_event`` of each as it goes.
        """
        if outcome not in REPLAYABLE:
            raise InvalidInput(f"can only replay {' or '.join(REPLAYABLE)} events, not {outcome!r}")
        if limit is not None:
            limit = integer("limit", limit, minimum=1)
        replayed: dict[str, str] = {}
        for row in _q.event_ids_with_outcome.many(self.conn, outcome=outcome, limit=limit):
            result = self._replay_one(row["id"], outcome)
            if result is None:
                continue  # replayed meanwhile, or held by another replay
            replayed[row["id"]] = result
            if on_event is not None:
                on_event(row["id"], result)
        return replayed

    def _replay_one(self, event_id: str, outcome: str) -> Outcome | None:
        """The event's new outcome; None if it no longer has ``outcome`` or another holds it."""
        with atomic(self.conn):
            locked = _q.lock_event_with_outcome.one(self.conn, event_id=event_id, outcome=outcome)
            if locked is None:
                return None
            return self._process(read_event(locked["payload"]), retry=(outcome,))

    # -- reading ----------------------------------------------------------

    def get_for_user(self, user_id: uuid.UUID | str) -> Subscription | None:
        """The user's current subscription (one that grants access first), or None."""
        uid = user_key(user_id)
        if uid is None:
            return None
        row = _q.subscription_for_user.one(
            self.conn, user_id=uid, access_statuses=_ACCESS_STATUS_LIST
        )
        return Subscription(**row) if row else None

    def get_by_stripe_id(self, stripe_subscription_id: str) -> Subscription | None:
        """The subscription with that Stripe id, or None."""
        row = _q.subscription_by_stripe_id.one(
            self.conn,
            stripe_subscription_id=text("stripe_subscription_id", stripe_subscription_id),
            access_statuses=_ACCESS_STATUS_LIST,
        )
        return Subscription(**row) if row else None

    def has_access(self, user_id: uuid.UUID | str) -> bool:
        """True if the user has an active, trialing or past_due subscription.

        A sign-up trial (no Stripe subscription yet) counts until its trial_end.
        """
        uid = user_key(user_id)
        if uid is None:
            return False
        row = _q.has_access.one(self.conn, user_id=uid, access_statuses=_ACCESS_STATUS_LIST)
        return bool(row and row["has_access"])

    def events(self, outcome: str | None = None, limit: int = 100) -> list[StripeEvent]:
        """Recorded events, newest first; only those with ``outcome`` if given."""
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidInput(f"unknown outcome {outcome!r} (one of {', '.join(OUTCOMES)})")
        page = integer("limit", limit, minimum=1, maximum=MAX_EVENTS_LIMIT)
        rows = _q.events.many(self.conn, outcome=outcome, limit=page)
        return [StripeEvent(**row) for row in rows]

    def event(self, event_id: str) -> StripeEvent | None:
        """One recorded event, or None."""
        row = _q.event_by_id.one(self.conn, event_id=text("event_id", event_id))
        return StripeEvent(**row) if row else None

    def event_payload(self, event_id: str) -> dict[str, Any] | None:
        """The event exactly as received, or None."""
        row = _q.event_payload.one(self.conn, event_id=text("event_id", event_id))
        return cast(dict[str, Any], row["payload"]) if row else None
