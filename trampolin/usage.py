"""Usage allowance: what a user may still use this period, charges, give-backs and plans.

``Usage(conn)`` (and ``AsyncUsage(aconn)``, awaited). A charge is one
statement that checks the limit on the newest counter and writes the ledger
row with it (sql/queries/usage.sql): nothing read-then-written, so no lost
charge and no overshoot under any concurrency, and ``used`` always equals the
sum of the period's ledger. Admins (role ``admin``) are unlimited; a user
without a subscription that grants access has an allowance of 0. Limits come
from ``plans`` (price -> monthly limit, trial limit; the row ``default``
for any other price). docs/usage.md has the rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg import errors as pgerrors

from trampolin import queries
from trampolin.db import atomic
from trampolin.errors import InvalidInput, LimitExceeded, NotFound
from trampolin.values import first_line, integer, optional_aware_time, text, user_key

DEFAULT_PLAN = "default"
MAX_UNITS = 100_000
MAX_LIMIT = 2**31 - 1
MAX_TRIAL_EXTENSION_DAYS = 90  # as the app's admin page allowed
MAX_REASON_LENGTH = 500

_q = queries.load("usage")


@dataclass(frozen=True)
class Allowance:
    """A user's allowance now; ``limit`` and ``remaining`` are None when unlimited."""

    limit: int | None
    used: int
    remaining: int | None
    period_start: datetime | None
    period_end: datetime | None
    trialing: bool
    unlimited: bool


@dataclass(frozen=True)
class Charge:
    """A granted charge: the period it went to and what remains there (None: unlimited)."""

    period_start: datetime
    used: int
    remaining: int | None


@dataclass(frozen=True)
class GivenBack:
    """What a give-back returned (at most what was used) and what remains now (None: unlimited)."""

    given: int
    remaining: int | None


@dataclass(frozen=True)
class Plan:
    price_id: str
    name: str | None
    monthly_limit: int
    trial_limit: int
    updated_at: datetime


@dataclass(frozen=True)
class TrialExtension:
    """A trial's new end; a Stripe subscription's trial must be extended in Stripe too."""

    subscription_id: uuid.UUID
    stripe_subscription_id: str | None
    trial_end: datetime


class AsyncUsage:
    """Allowances, charges, give-backs and plans on one psycopg connection."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn

    async def allowance(self, user_id: uuid.UUID | str) -> Allowance | None:
        """The user's allowance in the current period, or None for an unknown user."""
        key = user_key(user_id)
        if key is None:
            return None
        row = await _q.allowance.one(self.conn, user_id=key)
        return None if row is None else _allowance(row)

    async def consume(
        self,
        user_id: uuid.UUID | str,
        n: int = 1,
        *,
        reason: str,
        search_id: uuid.UUID | str | None = None,
    ) -> int | None:
        """Charge ``n`` units; what remains after (None: unlimited).

        LimitExceeded, and nothing charged, when fewer than ``n`` remain.
        """
        return (await self.charge(user_id, n, reason=reason, search_id=search_id)).remaining

    async def charge(
        self,
        user_id: uuid.UUID | str,
        n: int = 1,
        *,
        reason: str,
        search_id: uuid.UUID | str | None = None,
    ) -> Charge:
        """consume(), saying which period was charged (to give units back to it later)."""
        units = integer("n", n, minimum=1, maximum=MAX_UNITS)
        params = {
            "user_id": _user(user_id),
            "n": units,
            "reason": _reason(reason),
            "search_id": _optional_uuid("search_id", search_id),
        }
        # One statement decides and charges (a refusal is a result, not an error).
        try:
            async with atomic(self.conn):
                row = await _q.consume.one(self.conn, **params)
        except psycopg.Error as exc:
            _translate(exc, params)
        assert row is not None
        if row["user_id"] is None:
            raise NotFound(f"no user with id {str(user_id)!r}")
        if not row["search_ok"]:
            raise NotFound(f"no search with id {params['search_id']} of user {params['user_id']}")
        if not row["granted"]:
            # The refusing statement read the counter from its snapshot, which misses a
            # charge that committed while it waited for the row; a new statement sees it.
            current = await _q.allowance.one(self.conn, user_id=params["user_id"])
            _refuse(current or row, units)
        return Charge(row["period_start"], row["used"], _remaining(row))

    async def give_back(
        self,
        user_id: uuid.UUID | str,
        n: int,
        *,
        reason: str,
        analysis_id: uuid.UUID | str | None = None,
        period_start: datetime | None = None,
    ) -> int | None:
        """Return up to ``n`` units (never below 0 used); what remains now (None: unlimited).

        To the current period, or to ``period_start`` (the period a unit was
        charged in, as an analysis remembers it).
        """
        given = await self.give_back_units(
            user_id, n, reason=reason, analysis_id=analysis_id, period_start=period_start
        )
        return given.remaining

    async def give_back_units(
        self,
        user_id: uuid.UUID | str,
        n: int,
        *,
        reason: str,
        analysis_id: uuid.UUID | str | None = None,
        period_start: datetime | None = None,
    ) -> GivenBack:
        """give_back(), saying how many units it gave back."""
        params = {
            "user_id": _user(user_id),
            "n": integer("n", n, minimum=1, maximum=MAX_UNITS),
            "reason": _reason(reason),
            "search_id": None,
            "analysis_id": _optional_uuid("analysis_id", analysis_id),
            "period_start": optional_aware_time("period_start", period_start),
        }
        try:
            async with atomic(self.conn):
                row = await _q.give_back.one(self.conn, **params)
        except pgerrors.ForeignKeyViolation:  # the analysis is unknown (or deleted meanwhile)
            raise NotFound(f"no analysis with id {params['analysis_id']}") from None
        assert row is not None
        if row["user_id"] is None:
            raise NotFound(f"no user with id {params['user_id']}")
        return GivenBack(row["given"], _remaining(row))

    async def set_plan_limit(
        self, price_id: str, monthly_limit: int, *, trial_limit: int | None = None
    ) -> Plan:
        """Set the monthly limit of a Stripe price (``default``: every other price)."""
        params = {
            "price_id": _price_id(price_id),
            "monthly_limit": integer("monthly_limit", monthly_limit, maximum=MAX_LIMIT),
            "trial_limit": None
            if trial_limit is None
            else integer("trial_limit", trial_limit, maximum=MAX_LIMIT),
        }
        async with atomic(self.conn):
            row = await _q.set_plan_limit.one(self.conn, **params)
        assert row is not None
        return Plan(**row)

    async def plans(self) -> list[Plan]:
        """Every plan, ``default`` first."""
        return [Plan(**row) for row in await _q.plans.many(self.conn)]

    async def extend_trial(self, user_id: uuid.UUID | str, days: int) -> TrialExtension | None:
        """Push the user's trial end back by ``days``; None if the user has no trialing
        subscription (or is unknown)."""
        key = user_key(user_id)
        days = integer("days", days, minimum=1, maximum=MAX_TRIAL_EXTENSION_DAYS)
        if key is None:
            return None
        async with atomic(self.conn):
            row = await _q.extend_trial.one(self.conn, user_id=key, days=days)
        if row is None:
            return None
        return TrialExtension(row["id"], row["stripe_subscription_id"], row["trial_end"])


def _allowance(row: Mapping[str, Any]) -> Allowance:
    return Allowance(
        limit=row["usage_limit"],
        used=row["used"],
        remaining=_remaining(row),
        period_start=row["period_start"],
        period_end=row["period_end"],
        trialing=row["trial"],
        unlimited=row["unlimited"],
    )


def _remaining(row: Mapping[str, Any]) -> int | None:
    limit = row["usage_limit"]
    return None if limit is None else max(0, limit - row["used"])


def _refuse(row: Mapping[str, Any], requested: int) -> NoReturn:
    if row["period_start"] is None:
        raise LimitExceeded(
            f"user {row['user_id']} has no subscription that grants an allowance "
            "(active, trialing or past due)",
            requested=requested,
            remaining=0,
        )
    remaining = _remaining(row) or 0
    if row["trial"]:
        where = "of the trial's"
    elif row["period_end"] is not None:
        where = f"until {row['period_end'].astimezone(UTC):%Y-%m-%d %H:%M} UTC, of"
    else:
        where = "of"
    raise LimitExceeded(
        f"{requested} unit(s) requested, {remaining} remain {where} {row['usage_limit']}",
        requested=requested,
        remaining=remaining,
    )


def _user(value: object) -> uuid.UUID:
    """The id of a user that a charge is for; NotFound if it cannot be one."""
    key = user_key(value)
    if key is None:
        raise NotFound(f"no user with id {value!r}")
    return key


def _optional_uuid(field: str, value: object) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(text(field, value))
    except ValueError:
        raise InvalidInput(f"{field} {value!r} is not a UUID") from None


def _reason(value: object) -> str:
    reason = text("reason", value).strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"reason must be 1 to {MAX_REASON_LENGTH} characters")
    return reason


def _price_id(value: object) -> str:
    price_id = text("price_id", value)
    if not price_id or len(price_id) > 255 or any(ch.isspace() for ch in price_id):
        raise InvalidInput(f"price_id {price_id!r}: expected a Stripe price id (no spaces)")
    return price_id


def _translate(exc: psycopg.Error, params: Mapping[str, Any]) -> NoReturn:
    """Name what a charge clashed with; re-raise anything unexpected."""
    if isinstance(exc, pgerrors.ForeignKeyViolation):  # the user or search deleted meanwhile
        raise NotFound(f"no user {params['user_id']} or search {params['search_id']}") from None
    if isinstance(exc, pgerrors.NumericValueOutOfRange):
        raise InvalidInput(f"a number is out of range: {first_line(exc)}") from None
    raise exc


# -- Sync twins: generated from the Async classes above by tools/async_to_sync.py --


class Usage:
    """Allowances, charges, give-backs and plans on one psycopg connection."""

    def __init__(self, conn: Connection[Any]) -> None:
        self.conn = conn

    def allowance(self, user_id: uuid.UUID | str) -> Allowance | None:
        """The user's allowance in the current period, or None for an unknown user."""
        key = user_key(user_id)
        if key is None:
            return None
        row = _q.allowance.one(self.conn, user_id=key)
        return None if row is None else _allowance(row)

    def consume(
        self,
        user_id: uuid.UUID | str,
        n: int = 1,
        *,
        reason: str,
        search_id: uuid.UUID | str | None = None,
    ) -> int | None:
        """Charge ``n`` units; what remains after (None: unlimited).

        LimitExceeded, and nothing charged, when fewer than ``n`` remain.
        """
        return (self.charge(user_id, n, reason=reason, search_id=search_id)).remaining

    def charge(
        self,
        user_id: uuid.UUID | str,
        n: int = 1,
        *,
        reason: str,
        search_id: uuid.UUID | str | None = None,
    ) -> Charge:
        """consume(), saying which period was charged (to give units back to it later)."""
        units = integer("n", n, minimum=1, maximum=MAX_UNITS)
        params = {
            "user_id": _user(user_id),
            "n": units,
            "reason": _reason(reason),
            "search_id": _optional_uuid("search_id", search_id),
        }
        # One statement decides and charges (a refusal is a result, not an error).
        try:
            with atomic(self.conn):
                row = _q.consume.one(self.conn, **params)
        except psycopg.Error as exc:
            _translate(exc, params)
        assert row is not None
        if row["user_id"] is None:
            raise NotFound(f"no user with id {str(user_id)!r}")
        if not row["search_ok"]:
            raise NotFound(f"no search with id {params['search_id']} of user {params['user_id']}")
        if not row["granted"]:
            # The refusing statement read the counter from its snapshot, which misses a
            # charge that committed while it waited for the row; a new statement sees it.
            current = _q.allowance.one(self.conn, user_id=params["user_id"])
            _refuse(current or row, units)
        return Charge(row["period_start"], row["used"], _remaining(row))

    def give_back(
        self,
        user_id: uuid.UUID | str,
        n: int,
        *,
        reason: str,
        analysis_id: uuid.UUID | str | None = None,
        period_start: datetime | None = None,
    ) -> int | None:
        """Return up to ``n`` units (never below 0 used); what remains now (None: unlimited).

        To the current period, or to ``period_start`` (the period a unit was
        charged in, as an analysis remembers it).
        """
        given = self.give_back_units(
            user_id, n, reason=reason, analysis_id=analysis_id, period_start=period_start
        )
        return given.remaining

    def give_back_units(
        self,
        user_id: uuid.UUID | str,
        n: int,
        *,
        reason: str,
        analysis_id: uuid.UUID | str | None = None,
        period_start: datetime | None = None,
    ) -> GivenBack:
        """give_back(), saying how many units it gave back."""
        params = {
            "user_id": _user(user_id),
            "n": integer("n", n, minimum=1, maximum=MAX_UNITS),
            "reason": _reason(reason),
            "search_id": None,
            "analysis_id": _optional_uuid("analysis_id", analysis_id),
            "period_start": optional_aware_time("period_start", period_start),
        }
        try:
            with atomic(self.conn):
                row = _q.give_back.one(self.conn, **params)
        except pgerrors.ForeignKeyViolation:  # the analysis is unknown (or deleted meanwhile)
            raise NotFound(f"no analysis with id {params['analysis_id']}") from None
        assert row is not None
        if row["user_id"] is None:
            raise NotFound(f"no user with id {params['user_id']}")
        return GivenBack(row["given"], _remaining(row))

    def set_plan_limit(
        self, price_id: str, monthly_limit: int, *, trial_limit: int | None = None
    ) -> Plan:
        """Set the monthly limit of a Stripe price (``default``: every other price)."""
        params = {
            "price_id": _price_id(price_id),
            "monthly_limit": integer("monthly_limit", monthly_limit, maximum=MAX_LIMIT),
            "trial_limit": None
            if trial_limit is None
            else integer("trial_limit", trial_limit, maximum=MAX_LIMIT),
        }
        with atomic(self.conn):
            row = _q.set_plan_limit.one(self.conn, **params)
        assert row is not None
        return Plan(**row)

    def plans(self) -> list[Plan]:
        """Every plan, ``default`` first."""
        return [Plan(**row) for row in _q.plans.many(self.conn)]

    def extend_trial(self, user_id: uuid.UUID | str, days: int) -> TrialExtension | None:
        """Push the user's trial end back by ``days``; None if the user has no trialing
        subscription (or is unknown)."""
        key = user_key(user_id)
        days = integer("days", days, minimum=1, maximum=MAX_TRIAL_EXTENSION_DAYS)
        if key is None:
            return None
        with atomic(self.conn):
            row = _q.extend_trial.one(self.conn, user_id=key, days=days)
        if row is None:
            return None
        return TrialExtension(row["id"], row["stripe_subscription_id"], row["trial_end"])
