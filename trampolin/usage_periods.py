"""Usage periods: which month of a billing period a charge belongs to (pure, no database).

The allowance is counted per period. A paid subscription's period is its
billing period, cut into months from its start when it is longer than a month
(a yearly plan's monthly limit applies to each month of the year). Months are
calendar months in UTC, counted from the anchor as Stripe counts them: the
anchor's day of the month, or the month's last day when it has none (Jan 31,
Feb 28, Mar 31, ...), always from the anchor, never from the previous month.

sql/migrations/0009_usage.sql defines the same rules as the SQL functions
usage_add_months, usage_months_between and usage_paid_period, which the
consume statement uses; tests/test_usage.py holds the two equal.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from trampolin.values import aware_time


def add_months(ts: datetime, months: int) -> datetime:
    """``ts`` plus ``months`` calendar months in UTC, the day clamped to the month's length."""
    utc = aware_time("ts", ts).astimezone(UTC)
    index = utc.year * 12 + (utc.month - 1) + months
    year, month = divmod(index, 12)
    day = min(utc.day, calendar.monthrange(year, month + 1)[1])
    return utc.replace(year=year, month=month + 1, day=day)


def months_between(start: datetime, end: datetime) -> int:
    """The number of whole months from ``start`` to ``end`` (rounded down)."""
    a = aware_time("start", start).astimezone(UTC)
    b = aware_time("end", end).astimezone(UTC)
    months = (b.year - a.year) * 12 + b.month - a.month
    return months - 1 if add_months(a, months) > b else months


def paid_period(start: datetime, end: datetime | None, at: datetime) -> tuple[datetime, datetime]:
    """The period of a paid subscription, billed from ``start`` to ``end``, that holds ``at``.

    Within the billing period: the month of it that holds ``at``; its last
    month runs to ``end`` (a monthly plan's period is its billing period, even
    when that is a few days longer than "start plus one month"). After ``end``
    (the renewal has not arrived yet): months from ``end``. Without an end:
    months from ``start``. Before ``start``: its first month.
    """
    if end is not None and end <= start:
        end = None  # no usable end: count months from the start
    if end is not None and at < end:
        last = max(1, months_between(start, end)) - 1
        n = min(max(0, months_between(start, at)), last)
        return add_months(start, n), end if n == last else add_months(start, n + 1)
    anchor = end if end is not None else start
    n = max(0, months_between(anchor, at))
    return add_months(anchor, n), add_months(anchor, n + 1)


def calendar_month(at: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month that holds ``at`` (an admin's period)."""
    start = (
        aware_time("at", at)
        .astimezone(UTC)
        .replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    return start, add_months(start, 1)
