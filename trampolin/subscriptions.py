"""Stripe webhook events -> subscriptions: verify, record, apply in order, replay.

Stripe delivers each event at least once, in any order, and retries for days.
Every event is recorded in ``stripe_events`` in the same transaction as its
effect. A subscription row only moves forward along the key (event created,
rank, event id) described in sql/queries/subscriptions.sql, so duplicates and
older events change nothing and concurrent deliveries converge. An event whose
customer is not linked to a user yet is kept as ``unmatched`` and replayed when
the customer is linked. An event whose effect raised is kept as ``failed``
with the error; it is tried again when Stripe delivers it again, or by replay.

The stripe library is imported only by :func:`parse_webhook`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import psycopg
from psycopg.types.json import Jsonb

from trampolin import queries
from trampolin.db import atomic
from trampolin.errors import Conflict, InvalidInput, InvalidSignature, NotFound

if TYPE_CHECKING:
    import stripe

Outcome = Literal["applied", "duplicate", "stale", "ignored", "unmatched", "failed"]
OUTCOMES: tuple[str, ...] = (
    "pending",
    "applied",
    "duplicate",
    "stale",
    "ignored",
    "unmatched",
    "failed",
)
REPLAYABLE: tuple[str, ...] = ("unmatched", "failed")
ACCESS_STATUSES = frozenset({"active", "trialing", "past_due"})
DEFAULT_TOLERANCE = 300
MAX_EVENTS_LIMIT = 10_000
_MAX_BIGINT = 2**63 - 1
# A NUL character, as json.dumps writes it (and not an escaped backslash before "u0000").
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

_q = queries.load("subscriptions")


@dataclass(frozen=True)
class Subscription:
    user_id: uuid.UUID
    stripe_customer_id: str
    stripe_subscription_id: str
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

    @property
    def has_access(self) -> bool:
        return self.status in ACCESS_STATUSES


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


def parse_webhook(
    payload: bytes, sig_header: str, secret: str, *, tolerance: int = DEFAULT_TOLERANCE
) -> stripe.Event:
    """The verified event of a webhook request's raw body; InvalidSignature otherwise.

    ``payload`` must be the exact bytes Stripe sent: the signature covers them.
    """
    import stripe

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
    if not isinstance(_field(event, "id"), str) or not isinstance(_field(event, "type"), str):
        raise InvalidSignature("Stripe webhook body is not a Stripe event: no id or type")
    return event


def _field(obj: Any, key: str) -> Any:
    try:
        return obj[key]
    except (KeyError, TypeError):
        return None


@dataclass(frozen=True)
class _Event:
    """The envelope of an event, as plain JSON data."""

    id: str
    type: str
    created: datetime
    api_version: str | None
    livemode: bool
    payload: dict[str, Any]
    text: str  # the payload as JSON, serialised once

    @property
    def object(self) -> dict[str, Any]:
        data = self.payload.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            raise InvalidInput(f"Stripe event {self.id} has no data.object")
        return obj

    def ids(self) -> tuple[str | None, str | None]:
        """The customer and subscription this event concerns, where it says."""
        try:
            obj = self.object
        except InvalidInput:
            return None, None
        customer = _id(obj.get("customer"))
        kind = obj.get("object")
        if kind == "subscription":
            return customer, _id(obj.get("id"))
        if kind == "invoice":
            sub = obj.get("subscription")  # before 2025-03-31
            if sub is None:
                parent = obj.get("parent") or {}
                sub = (parent.get("subscription_details") or {}).get("subscription")
            return customer, _id(sub)
        return customer, _id(obj.get("subscription"))

    def _dumps(self, _obj: Any) -> str:
        return self.text

    def params(self) -> dict[str, Any]:
        customer, subscription = self.ids()
        return {
            "event_id": self.id,
            "type": self.type,
            "created": self.created,
            "api_version": self.api_version,
            "livemode": self.livemode,
            "customer_id": customer,
            "subscription_id": subscription,
            "payload": Jsonb(self.payload, dumps=self._dumps),
        }


def _normalize(event: Any) -> _Event:
    """Plain JSON data from a stripe.Event or a dict; InvalidInput if it is no event."""
    if isinstance(event, Mapping):
        data = dict(event)
    elif callable(getattr(event, "to_dict", None)):
        data = event.to_dict(for_json=True)
    else:
        raise InvalidInput(f"not a Stripe event: {type(event).__name__}")
    event_id, kind, created = data.get("id"), data.get("type"), data.get("created")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidInput("Stripe event has no id")
    event_id = _text("Stripe event id", event_id)
    if not isinstance(kind, str) or not kind:
        raise InvalidInput(f"Stripe event {event_id} has no type")
    if not isinstance(created, int) or isinstance(created, bool):
        raise InvalidInput(f"Stripe event {event_id} has no integer 'created'")
    try:
        text = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"Stripe event {event_id} is not plain JSON data: {exc}") from None
    if "\\u0000" in text and _JSON_NUL.search(text):  # the regex only when it may match
        raise InvalidInput(
            f"Stripe event {event_id} contains a NUL character, which PostgreSQL cannot store"
        )
    api_version = data.get("api_version")
    return _Event(
        id=event_id,
        type=_text(f"Stripe event {event_id}: type", kind),
        created=_ts(created, f"Stripe event {event_id}: 'created'"),
        api_version=api_version if isinstance(api_version, str) else None,
        livemode=data.get("livemode") is True,
        payload=data,
        text=text,
    )


def _id(value: Any) -> str | None:
    """An id, whether Stripe sent it as a string or as an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _ts(value: int, field: str) -> datetime:
    """A Unix timestamp as a datetime; InvalidInput naming ``field`` if out of range."""
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidInput(f"{field} is not a usable Unix timestamp: {value}") from None


def _opt_ts(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{field}: expected a Unix timestamp, got {value!r}")
    return _ts(value, field)


def _text(field: str, value: Any) -> str:
    """A string PostgreSQL text can hold; InvalidInput naming ``field`` otherwise."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL byte, which PostgreSQL text cannot hold")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} is not valid Unicode (lone surrogate)") from None
    return value


def _limit(value: Any, maximum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"limit must be an integer, not {type(value).__name__}")
    if not 1 <= value <= maximum:
        raise InvalidInput(f"limit must be between 1 and {maximum}, not {value}")
    return value


def _uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def _is_snapshot(event_type: str) -> bool:
    """customer.subscription.* events carry the whole subscription."""
    return event_type.startswith("customer.subscription.")


def _snapshot(event: _Event) -> dict[str, Any]:
    """The subscription columns from a customer.subscription.* payload (both API shapes)."""
    sub = event.object
    if sub.get("object") != "subscription":
        raise InvalidInput(f"{event.type} {event.id}: data.object is not a subscription")
    sub_id, customer = _id(sub.get("id")), _id(sub.get("customer"))
    if sub_id is None or customer is None:
        raise InvalidInput(f"{event.type} {event.id}: subscription without id or customer")
    items = (sub.get("items") or {}).get("data") or []
    item: dict[str, Any] = items[0] if items and isinstance(items[0], dict) else {}
    price = item.get("price") or {}
    recurring = price.get("recurring") or item.get("plan") or {}
    # Before 2025-03-31 (basil) the period is on the subscription; since, on each item.
    period_start = sub.get("current_period_start")
    period_end = sub.get("current_period_end")
    if period_start is None and period_end is None:
        period_start = item.get("current_period_start")
        period_end = item.get("current_period_end")
    quantity = item.get("quantity")
    if quantity is None:
        quantity = sub.get("quantity")
    status = sub.get("status")
    if event.type == "customer.subscription.deleted":
        status = "canceled"
    if not isinstance(status, str):
        raise InvalidInput(f"{event.type} {event.id}: subscription without status")
    metadata = sub.get("metadata") or {}
    where = f"{event.type} {event.id}"
    return {
        "subscription_id": sub_id,
        "customer_id": customer,
        "status": status,
        "price_id": _id(price) or _id(item.get("plan")),
        "quantity": quantity,
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "current_period_start": _opt_ts(period_start, f"{where}: current_period_start"),
        "current_period_end": _opt_ts(period_end, f"{where}: current_period_end"),
        "cancel_at_period_end": sub.get("cancel_at_period_end") is True,
        "cancel_at": _opt_ts(sub.get("cancel_at"), f"{where}: cancel_at"),
        "canceled_at": _opt_ts(sub.get("canceled_at"), f"{where}: canceled_at"),
        "ended_at": _opt_ts(sub.get("ended_at"), f"{where}: ended_at"),
        "trial_start": _opt_ts(sub.get("trial_start"), f"{where}: trial_start"),
        "trial_end": _opt_ts(sub.get("trial_end"), f"{where}: trial_end"),
        "metadata": Jsonb(metadata),
        "metadata_user_id": _uuid(metadata.get("user_id")) if isinstance(metadata, dict) else None,
    }


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Subscriptions:
    """Subscriptions and the Stripe event log on one connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    # -- events in ---------------------------------------------------------

    def apply_stripe_event(self, event: Any) -> Outcome:
        """Record and apply one event (a stripe.Event or the event as a dict).

        Returns 'applied', 'duplicate', 'stale', 'ignored', 'unmatched', or
        'failed' when applying raised (the effect is rolled back, the event is
        kept with the error; the next delivery of it tries again).
        """
        return self._process(_normalize(event), retry=("failed",))

    def _process(self, event: _Event, *, retry: tuple[str, ...]) -> Outcome:
        """Apply an event; ``retry``: stored outcomes that do not make it a duplicate."""
        try:
            if _is_snapshot(event.type):
                return self._process_snapshot(event, retry)
            if event.type == "checkout.session.completed":
                with atomic(self.conn):
                    return self._apply_checkout(event, retry)
            with atomic(self.conn):
                return self._record(event, "ignored", retry)
        except Exception as exc:
            return self._fail(event, retry, exc)

    def _process_snapshot(self, event: _Event, retry: tuple[str, ...]) -> Outcome:
        params = {**event.params(), **_snapshot(event)}
        if not self._idle_autocommit():
            with atomic(self.conn):
                outcome = self._apply_snapshot(params, retry)
                return self._settle_unmatched(params) if outcome == "unmatched" else outcome
        # On an idle autocommit connection the statement is its own transaction:
        # no BEGIN and COMMIT round trips on the common path.
        outcome = self._apply_snapshot(params, retry)
        if outcome != "unmatched":
            return outcome
        try:
            with atomic(self.conn):
                return self._settle_unmatched(params)
        except Exception as exc:  # the event is stored as unmatched by now
            return self._fail(event, ("unmatched",), exc)

    def _fail(self, event: _Event, retry: tuple[str, ...], exc: Exception) -> Outcome:
        """Record that applying raised (its effect was rolled back) and say 'failed'."""
        if self.conn.closed or self.conn.broken:
            raise exc  # the connection is gone: nothing can be recorded
        with atomic(self.conn):
            return self._record(event, "failed", retry, error=_describe(exc))

    def _idle_autocommit(self) -> bool:
        return (
            self.conn.autocommit
            and self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )

    def _record(
        self, event: _Event, outcome: str, retry: Iterable[str], *, error: str | None = None
    ) -> Outcome:
        row = _q.record_event.one(
            self.conn, **event.params(), outcome=outcome, error=error, retry=list(retry)
        )
        return cast(Outcome, row["outcome"]) if row else "duplicate"

    def _apply_snapshot(self, params: dict[str, Any], retry: Iterable[str]) -> Outcome:
        row = _q.apply_snapshot.one(self.conn, **params, retry=list(retry))
        assert row is not None
        return cast(Outcome, row["outcome"])

    def _settle_unmatched(self, params: dict[str, Any]) -> Outcome:
        """Decide again under the customer lock, which a link holds until it commits.

        Either this now sees the link, or the link's replay sees this event.
        """
        _q.lock_customer.exec(self.conn, customer_id=params["customer_id"])
        outcome = self._apply_snapshot(params, ("unmatched",))
        if outcome == "duplicate":  # a link's replay got to it first
            recorded = self.event(params["event_id"])
            outcome = cast(Outcome, recorded.outcome if recorded else "unmatched")
        return outcome

    def _apply_checkout(self, event: _Event, retry: tuple[str, ...]) -> Outcome:
        """checkout.session.completed: link its customer to the user it names."""
        session = event.object
        customer = _id(session.get("customer"))
        if customer is None:
            return self._record(event, "ignored", retry)
        if self._record(event, "pending", retry) == "duplicate":
            return "duplicate"
        _q.lock_customer.exec(self.conn, customer_id=customer)
        metadata = session.get("metadata") or {}
        candidates = [session.get("client_reference_id")]
        if isinstance(metadata, dict):
            candidates.append(metadata.get("user_id"))
        user_id = next(
            (
                uid
                for uid in map(_uuid, candidates)
                if uid is not None and _q.user_exists.one(self.conn, user_id=uid)
            ),
            None,
        )
        if user_id is not None:
            self._link(user_id, customer)
            outcome: Outcome = "applied"
        elif _q.customer_owner.one(self.conn, customer_id=customer):
            outcome = "ignored"  # nobody named, but the customer is linked already
        else:
            outcome = "unmatched"
        _q.set_outcome.exec(self.conn, event_id=event.id, outcome=outcome)
        return outcome

    # -- linking and replay -------------------------------------------------

    def link_customer(self, user_id: uuid.UUID | str, stripe_customer_id: str) -> dict[str, str]:
        """Link a Stripe customer to a user and replay that customer's unmatched events.

        Returns each replayed event id with its new outcome. NotFound for an
        unknown user; Conflict if the customer belongs to another user.
        """
        uid = _uuid(str(user_id))
        if uid is None:
            raise InvalidInput(f"not a user id: {user_id!r}")
        stripe_customer_id = _text("stripe_customer_id", stripe_customer_id)
        if not stripe_customer_id:
            raise InvalidInput("empty Stripe customer id")
        with atomic(self.conn):
            _q.lock_customer.exec(self.conn, customer_id=stripe_customer_id)
            return self._link(uid, stripe_customer_id)

    def _link(self, user_id: uuid.UUID, customer: str) -> dict[str, str]:
        """Link under the customer lock (held by the caller), then replay."""
        owner = _q.customer_owner.one(self.conn, customer_id=customer)
        if owner is not None and owner["id"] != user_id:
            raise Conflict(f"Stripe customer {customer} is already linked to user {owner['id']}")
        if owner is None:
            try:
                with atomic(self.conn):
                    changed = _q.set_user_customer.execrows(
                        self.conn, user_id=user_id, customer_id=customer
                    )
            except psycopg.errors.UniqueViolation:
                raise Conflict(
                    f"Stripe customer {customer} is already linked to another user"
                ) from None
            if not changed:
                raise NotFound(f"no user {user_id}")
        results: dict[str, str] = {}
        for row in _q.lock_unmatched_for_customer.many(self.conn, customer_id=customer):
            results[row["id"]] = self._process(_normalize(row["payload"]), retry=("unmatched",))
        return results

    def replay(
        self,
        outcome: str = "unmatched",
        *,
        limit: int | None = None,
        on_event: Callable[[str, str], None] | None = None,
    ) -> dict[str, str]:
        """Apply again the recorded events with that outcome ('unmatched' or 'failed').

        Oldest first, each in its own transaction; an event another replay is
        holding is skipped. Returns each event id with its new outcome.
        """
        if outcome not in REPLAYABLE:
            raise InvalidInput(f"can only replay {' or '.join(REPLAYABLE)} events, not {outcome!r}")
        if limit is not None:
            limit = _limit(limit, _MAX_BIGINT)
        results: dict[str, str] = {}
        ids = _q.event_ids_with_outcome.many(self.conn, outcome=outcome, limit=limit)
        for row in ids:
            with atomic(self.conn):
                locked = _q.lock_event_with_outcome.one(
                    self.conn, event_id=row["id"], outcome=outcome
                )
                if locked is None:
                    continue  # replayed meanwhile, or held by another replay
                result = self._process(_normalize(locked["payload"]), retry=(outcome,))
            results[row["id"]] = result
            if on_event is not None:
                on_event(row["id"], result)
        return results

    # -- reading ----------------------------------------------------------

    def get_for_user(self, user_id: uuid.UUID | str) -> Subscription | None:
        """The user's current subscription (access-granting first), or None."""
        uid = _uuid(str(user_id))
        if uid is None:
            return None
        row = _q.subscription_for_user.one(self.conn, user_id=uid)
        return Subscription(**row) if row else None

    def get_by_stripe_id(self, stripe_subscription_id: str) -> Subscription | None:
        row = _q.subscription_by_stripe_id.one(
            self.conn,
            stripe_subscription_id=_text("stripe_subscription_id", stripe_subscription_id),
        )
        return Subscription(**row) if row else None

    def has_access(self, user_id: uuid.UUID | str) -> bool:
        """True if the user has an active, trialing or past_due subscription."""
        uid = _uuid(str(user_id))
        if uid is None:
            return False
        row = _q.has_access.one(self.conn, user_id=uid)
        return bool(row and row["has_access"])

    def events(self, outcome: str | None = None, limit: int = 100) -> list[StripeEvent]:
        """Recorded events, newest first; only those with ``outcome`` if given."""
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidInput(f"unknown outcome {outcome!r} (one of {', '.join(OUTCOMES)})")
        rows = _q.events.many(self.conn, outcome=outcome, limit=_limit(limit, MAX_EVENTS_LIMIT))
        return [StripeEvent(**row) for row in rows]

    def event(self, event_id: str) -> StripeEvent | None:
        """One recorded event, or None."""
        row = _q.event_by_id.one(self.conn, event_id=_text("event_id", event_id))
        return StripeEvent(**row) if row else None

    def event_payload(self, event_id: str) -> dict[str, Any] | None:
        """The event exactly as received, or None."""
        row = _q.event_payload.one(self.conn, event_id=_text("event_id", event_id))
        return cast(dict[str, Any], row["payload"]) if row else None
