"""Period arithmetic of trampolin.usage_periods (no database; tests/test_usage.py holds
the SQL functions equal to these)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from trampolin.errors import InvalidInput
from trampolin.usage_periods import add_months, calendar_month, months_between, paid_period


def t(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (t(2025, 1, 31, 12), 1, t(2025, 2, 28, 12)),
        (t(2024, 1, 31), 1, t(2024, 2, 29)),
        (t(2025, 1, 31), 2, t(2025, 3, 31)),
        (t(2025, 3, 31), -1, t(2025, 2, 28)),
        (t(2025, 12, 15), 1, t(2026, 1, 15)),
        (t(2024, 2, 29), 12, t(2025, 2, 28)),
    ],
)
def test_add_months_clamps_the_day_like_stripe(
    start: datetime, months: int, expected: datetime
) -> None:
    assert add_months(start, months) == expected


def test_months_are_utc_months_whatever_the_zone_given() -> None:
    # 2025-01-31 23:00 in UTC-05:00 is Feb 1 04:00 UTC: a month later is Mar 1 04:00 UTC.
    local = datetime(2025, 1, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    assert add_months(local, 1) == t(2025, 3, 1, 4)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (t(2025, 1, 31), t(2025, 2, 28), 1),
        (t(2025, 1, 31), t(2025, 2, 27, 23, 59), 0),
        (t(2025, 1, 15), t(2026, 1, 15), 12),
        (t(2025, 1, 15), t(2026, 1, 14), 11),
        (t(2025, 1, 15), t(2025, 1, 15), 0),
        (t(2025, 3, 15), t(2025, 2, 20), -1),
    ],
)
def test_months_between_rounds_down(start: datetime, end: datetime, expected: int) -> None:
    assert months_between(start, end) == expected


def test_a_monthly_plan_s_period_is_its_billing_period() -> None:
    # Anchored on Jan 31: Stripe bills Feb 28 .. Mar 31, a few days more than a month.
    start, end = t(2025, 2, 28), t(2025, 3, 31)
    for at in (start, t(2025, 3, 27), t(2025, 3, 29), end - timedelta(microseconds=1)):
        assert paid_period(start, end, at) == (start, end)


def test_a_yearly_plan_is_counted_per_month_of_the_year() -> None:
    start, end = t(2025, 1, 31), t(2026, 1, 31)
    assert paid_period(start, end, t(2025, 1, 31)) == (t(2025, 1, 31), t(2025, 2, 28))
    assert paid_period(start, end, t(2025, 3, 1)) == (t(2025, 2, 28), t(2025, 3, 31))
    assert paid_period(start, end, t(2025, 12, 31)) == (t(2025, 12, 31), end)
    assert paid_period(start, end, t(2026, 1, 30)) == (t(2025, 12, 31), end)


def test_after_the_billing_period_months_run_on_from_its_end() -> None:
    # The renewal has not arrived (a late webhook): the next month starts at the end.
    start, end = t(2025, 1, 1), t(2025, 2, 1)
    assert paid_period(start, end, t(2025, 2, 1)) == (t(2025, 2, 1), t(2025, 3, 1))
    assert paid_period(start, end, t(2025, 4, 10)) == (t(2025, 4, 1), t(2025, 5, 1))


def test_without_an_end_months_run_from_the_start() -> None:
    assert paid_period(t(2025, 1, 10), None, t(2025, 3, 9)) == (t(2025, 2, 10), t(2025, 3, 10))
    # an end before the start is no end
    assert paid_period(t(2025, 1, 10), t(2025, 1, 1), t(2025, 1, 11)) == (
        t(2025, 1, 10),
        t(2025, 2, 10),
    )


def test_before_the_start_is_the_first_month() -> None:
    assert paid_period(t(2025, 1, 10), t(2025, 2, 10), t(2025, 1, 1)) == (
        t(2025, 1, 10),
        t(2025, 2, 10),
    )


def test_calendar_month() -> None:
    assert calendar_month(t(2025, 2, 14, 13, 5)) == (t(2025, 2, 1), t(2025, 3, 1))
    assert calendar_month(t(2025, 12, 31, 23, 59)) == (t(2025, 12, 1), t(2026, 1, 1))


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        add_months(datetime(2025, 1, 1), 1)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        months_between(t(2025, 1, 1), datetime(2025, 1, 1))
