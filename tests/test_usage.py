"""Usage allowance: limits, periods, the ledger, races, and the usage / plan CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.twins import Side
from tests.usage_support import Billing, no_errors, run_threads, sql
from trampolin.analyses import Analyses
from trampolin.cli import main
from trampolin.errors import InvalidInput, LimitExceeded, NotFound
from trampolin.subscriptions import Subscriptions
from trampolin.usage import Usage
from trampolin.usage_periods import add_months, months_between, paid_period

STRIPE_DATA = Path(__file__).parent / "data" / "stripe"


@pytest.fixture
def billing(conn: psycopg.Connection[Any], make_user: Callable[..., uuid.UUID]) -> Billing:
    return Billing(conn, make_user)


# -- allowance -------------------------------------------------------------------


def test_a_subscriber_has_the_default_plan_s_500(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    allowance = side.repo(Usage).allowance(user)
    assert allowance is not None
    assert (allowance.limit, allowance.used, allowance.remaining) == (500, 0, 500)
    assert not allowance.trialing
    assert not allowance.unlimited
    assert allowance.period_start is not None
    assert allowance.period_end is not None
    assert allowance.period_end - allowance.period_start == timedelta(days=30)


def test_consume_charges_and_records_each_charge(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    usage = side.repo(Usage)
    assert usage.consume(user, reason="search") == 499
    assert usage.consume(user, 4, reason="search") == 495
    allowance = usage.allowance(user)
    assert allowance is not None
    assert (allowance.used, allowance.remaining) == (5, 495)
    assert billing.ledger(user) == [(1, "search"), (4, "search")]
    billing.assert_balanced()


def test_refused_charges_charge_nothing(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    usage = side.repo(Usage)
    usage.set_plan_limit("price_test", 5)
    assert usage.consume(user, 3, reason="a") == 2
    with pytest.raises(LimitExceeded, match="3 unit\\(s\\) requested, 2 remain until") as caught:
        usage.consume(user, 3, reason="b")
    assert (caught.value.requested, caught.value.remaining) == (3, 2)
    assert usage.consume(user, 2, reason="c") == 0
    with pytest.raises(LimitExceeded):
        usage.consume(user, reason="d")
    assert billing.ledger(user) == [(3, "a"), (2, "c")]
    billing.assert_balanced()


def test_no_subscription_no_allowance(side: Side, billing: Billing) -> None:
    user = billing.make_user()
    usage = side.repo(Usage)
    allowance = usage.allowance(user)
    assert allowance is not None
    assert (allowance.limit, allowance.remaining, allowance.period_start) == (0, 0, None)
    with pytest.raises(LimitExceeded, match="has no subscription that grants an allowance"):
        usage.consume(user, reason="search")
    for status in ("canceled", "incomplete", "incomplete_expired", "unpaid", "paused"):
        billing.subscribe(user, status=status)
    with pytest.raises(LimitExceeded):
        usage.consume(user, reason="search")
    assert billing.ledger(user) == []


def test_past_due_still_grants_and_a_returning_customer_gets_the_new_plan(
    side: Side, billing: Billing
) -> None:
    usage = side.repo(Usage)
    usage.set_plan_limit("price_gold", 2500)
    user = billing.subscriber(status="past_due")
    assert usage.consume(user, reason="a") == 499
    # cancels, then subscribes again: two rows for one customer, the new one counts
    sql.set_status.exec(billing.conn, id=_subscription(billing, user), status="canceled")
    with pytest.raises(LimitExceeded):
        usage.consume(user, reason="b")
    billing.subscribe(user, price_id="price_gold", started=timedelta(0))
    assert usage.consume(user, reason="c") == 2499


def test_admins_are_unlimited_and_still_recorded(side: Side, billing: Billing) -> None:
    admin = billing.admin()
    usage = side.repo(Usage)
    assert usage.consume(admin, 100_000, reason="search") is None
    allowance = usage.allowance(admin)
    assert allowance is not None
    assert allowance.unlimited
    assert (allowance.limit, allowance.remaining, allowance.used) == (None, None, 100_000)
    now = datetime.now(UTC)
    assert allowance.period_start == datetime(now.year, now.month, 1, tzinfo=UTC)
    assert usage.give_back(admin, 5, reason="r") is None
    billing.assert_balanced()


def test_unknown_users(side: Side) -> None:
    usage = side.repo(Usage)
    assert usage.allowance(uuid.uuid4()) is None
    assert usage.allowance("not-a-uuid") is None
    with pytest.raises(NotFound, match="no user with id"):
        usage.consume(uuid.uuid4(), reason="x")
    with pytest.raises(NotFound, match="no user with id 'nope'"):
        usage.consume("nope", reason="x")
    with pytest.raises(NotFound):
        usage.give_back(uuid.uuid4(), 1, reason="x")
    assert usage.extend_trial(uuid.uuid4(), 3) is None


# -- plans -----------------------------------------------------------------------


def test_plans_live_in_data(side: Side, billing: Billing) -> None:
    usage = side.repo(Usage)
    user = billing.subscriber(price_id="price_silver")
    other = billing.subscriber(price_id=None)
    plan = usage.set_plan_limit("price_silver", 1000)
    assert (plan.price_id, plan.monthly_limit, plan.trial_limit) == ("price_silver", 1000, 10)
    assert usage.consume(user, reason="x") == 999
    assert usage.consume(other, reason="x") == 499  # no price: the default
    usage.set_plan_limit("default", 600, trial_limit=20)
    assert usage.consume(other, reason="x") == 598
    assert usage.set_plan_limit("price_new", 50).trial_limit == 20  # the default's
    assert usage.set_plan_limit("price_silver", 1200).trial_limit == 10  # kept
    assert [p.price_id for p in usage.plans()] == ["default", "price_new", "price_silver"]


def test_lowering_a_limit_below_what_was_used_leaves_nothing(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    usage = side.repo(Usage)
    usage.consume(user, 10, reason="x")
    usage.set_plan_limit("price_test", 4)
    allowance = usage.allowance(user)
    assert allowance is not None
    assert (allowance.limit, allowance.used, allowance.remaining) == (4, 10, 0)
    with pytest.raises(LimitExceeded):
        usage.consume(user, reason="x")


# -- trials ----------------------------------------------------------------------


def test_a_sign_up_trial_before_any_stripe_subscription(side: Side, billing: Billing) -> None:
    user = billing.make_user()
    trial = billing.subscribe(user, status="trialing", stripe=False, trial_days=7)
    usage = side.repo(Usage)
    allowance = usage.allowance(user)
    assert allowance is not None
    assert (allowance.trialing, allowance.limit) == (True, 10)
    assert usage.consume(user, 10, reason="x") == 0
    with pytest.raises(LimitExceeded, match="remain of the trial's 10"):
        usage.consume(user, reason="x")
    # Stripe's subscription appears and is linked: the same trial, the same counter
    sql.link_trial.exec(billing.conn, id=trial, stripe_subscription_id="sub_linked")
    allowance = usage.allowance(user)
    assert allowance is not None
    assert (allowance.trialing, allowance.used) == (True, 10)


def test_a_user_has_one_sign_up_trial(billing: Billing) -> None:
    user = billing.make_user()
    billing.subscribe(user, status="trialing", stripe=False, trial_days=7)
    with pytest.raises(psycopg.errors.UniqueViolation, match="subscriptions_unlinked_user_key"):
        billing.subscribe(user, status="trialing", stripe=False, trial_days=7)


def test_stripe_events_still_upsert_beside_a_sign_up_trial(
    side: Side, billing: Billing, conn: psycopg.Connection[Any]
) -> None:
    # ON CONFLICT (stripe_subscription_id) of the webhook path works with the uuid key.
    event = json.loads(
        (STRIPE_DATA / "basil_2025-06-30_customer.subscription.created.json").read_text()
    )
    sub = event["data"]["object"]
    sub["status"] = "active"
    user = billing.make_user()
    billing.subscribe(user, status="trialing", stripe=False, trial_days=7)
    subscriptions = Subscriptions(conn)
    subscriptions.link_customer(user, sub["customer"])
    assert subscriptions.apply_stripe_event(event) == "applied"
    assert subscriptions.apply_stripe_event(event) == "duplicate"
    found = subscriptions.get_by_stripe_id(sub["id"])
    assert found is not None
    assert found.user_id == user
    allowance = side.repo(Usage).allowance(user)  # the Stripe subscription comes first
    assert allowance is not None
    assert (allowance.trialing, allowance.limit) == (False, 500)


def test_an_expired_sign_up_trial_grants_nothing_until_extended(
    side: Side, billing: Billing
) -> None:
    user = billing.make_user()
    trial = billing.subscribe(
        user, status="trialing", stripe=False, trial_days=7, started=timedelta(days=8)
    )
    usage = side.repo(Usage)
    with pytest.raises(LimitExceeded, match="no subscription"):
        usage.consume(user, reason="x")
    extension = usage.extend_trial(user, 5)
    assert extension is not None
    assert extension.subscription_id == trial
    assert extension.stripe_subscription_id is None
    # counted from now, as the trial had ended
    assert (
        timedelta(days=4, hours=23) < extension.trial_end - datetime.now(UTC) <= timedelta(days=5)
    )
    assert usage.consume(user, reason="x") == 9


def test_extending_a_running_trial_counts_from_its_end(side: Side, billing: Billing) -> None:
    user = billing.make_user()
    trial = billing.subscribe(user, status="trialing", trial_days=7, started=timedelta(days=1))
    before = sql.trial_end.one(billing.conn, id=trial)
    assert before is not None
    extension = side.repo(Usage).extend_trial(user, 3)
    assert extension is not None
    assert extension.stripe_subscription_id is not None
    assert extension.trial_end == before["trial_end"] + timedelta(days=3)
    assert side.repo(Usage).extend_trial(billing.subscriber(), 3) is None  # not trialing


def test_after_the_trial_the_monthly_counter_starts(side: Side, billing: Billing) -> None:
    user = billing.make_user()
    sub = billing.subscribe(user, status="trialing", trial_days=7, started=timedelta(days=1))
    usage = side.repo(Usage)
    assert usage.consume(user, 4, reason="x") == 6
    sql.set_status.exec(billing.conn, id=sub, status="active")
    now = datetime.now(UTC)
    sql.set_period.exec(billing.conn, id=sub, period_start=now, period_end=now + timedelta(days=30))
    assert usage.consume(user, reason="x") == 499
    periods = sql.periods.many(billing.conn, user_id=user)
    assert [(p["trial"], p["usage_limit"], p["used"]) for p in periods] == [
        (True, 10, 4),
        (False, 500, 1),
    ]


# -- periods ---------------------------------------------------------------------


def test_a_new_month_of_a_yearly_plan_starts_afresh(side: Side, billing: Billing) -> None:
    # A yearly subscription that began 40 days ago is in its second month.
    user = billing.subscriber(started=timedelta(days=40), length=timedelta(days=365))
    usage = side.repo(Usage)
    usage.set_plan_limit("price_test", 3)
    assert usage.consume(user, 3, reason="x") == 0
    allowance = usage.allowance(user)
    assert allowance is not None
    sub = sql.subscription_of.one(billing.conn, user_id=user)
    assert sub is not None
    second_month = add_months(sub["current_period_start"], 1)
    assert (allowance.period_start, allowance.period_end, allowance.used) == (
        second_month,
        add_months(second_month, 1),
        3,
    )
    assert [p["used"] for p in sql.periods.many(billing.conn, user_id=user)] == [3]


def test_a_renewal_starts_a_new_period_lazily(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    sub = _subscription(billing, user)
    usage = side.repo(Usage)
    usage.set_plan_limit("price_test", 2)
    assert usage.consume(user, 2, reason="x") == 0
    now = datetime.now(UTC)
    sql.set_period.exec(billing.conn, id=sub, period_start=now, period_end=now + timedelta(days=30))
    assert usage.consume(user, reason="x") == 1  # no reset job: the charge opened the period
    assert [p["used"] for p in sql.periods.many(billing.conn, user_id=user)] == [2, 1]
    billing.assert_balanced()


def test_a_late_renewal_still_starts_the_next_month(side: Side, billing: Billing) -> None:
    # The billing period ended an hour ago and its renewal event has not arrived.
    user = billing.subscriber(started=timedelta(days=30, hours=1))
    allowance = side.repo(Usage).allowance(user)
    assert allowance is not None
    assert allowance.period_start is not None
    assert timedelta(0) < datetime.now(UTC) - allowance.period_start < timedelta(hours=2)


_instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=_instants, length_days=st.none() | st.integers(-5, 800), offset=st.integers(-40, 900))
def test_the_sql_periods_are_the_python_periods(
    conn: psycopg.Connection[Any], start: datetime, length_days: int | None, offset: int
) -> None:
    end = None if length_days is None else start + timedelta(days=length_days, seconds=7)
    at = start + timedelta(days=offset, hours=5)
    row = sql.paid_period.one(conn, start=start, end=end, at=at)
    assert row is not None
    assert (row["period_start"], row["period_end"]) == paid_period(start, end, at)
    months = sql.months.one(conn, start=start, n=offset % 30 - 10, at=at)
    assert months is not None
    assert months["added"] == add_months(start, offset % 30 - 10)
    assert months["between"] == months_between(start, at)


# -- give-backs ------------------------------------------------------------------


def test_give_back_returns_units_never_below_zero(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    usage = side.repo(Usage)
    assert usage.give_back(user, 3, reason="nothing used yet") == 500
    usage.consume(user, 5, reason="search")
    assert usage.give_back(user, 2, reason="admin: sorry") == 497
    given = usage.give_back_units(user, 10, reason="admin: more")
    assert (given.given, given.remaining) == (3, 500)
    assert billing.ledger(user) == [(5, "search"), (-2, "admin: sorry"), (-3, "admin: more")]
    billing.assert_balanced()


def test_give_back_for_an_unknown_analysis_is_not_found(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    usage = side.repo(Usage)
    usage.consume(user, 1, reason="search")
    with pytest.raises(NotFound, match="no analysis"):
        usage.give_back(user, 1, reason="failed", analysis_id=uuid.uuid4())
    assert usage.allowance(user).used == 1  # type: ignore[union-attr]


# -- transactions ----------------------------------------------------------------


def test_a_charge_in_the_caller_s_transaction_rolls_back_with_it(
    side: Side, billing: Billing
) -> None:
    user = billing.subscriber()
    usage = side.repo(Usage)
    usage.set_plan_limit("price_test", 3)

    def work_that_fails() -> None:
        with side.transaction():
            usage.consume(user, 2, reason="x")
            with pytest.raises(LimitExceeded):
                usage.consume(user, 2, reason="y")  # refused; the transaction is still usable
            assert usage.consume(user, reason="z") == 0
            raise RuntimeError("the caller's work failed")

    with pytest.raises(RuntimeError):
        work_that_fails()
    assert billing.ledger(user) == []
    assert usage.consume(user, 3, reason="again") == 0


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be between 1 and 100000"),
        ({"n": -1}, "n must be between 1"),
        ({"n": True}, "n must be an integer, not bool"),
        ({"n": "1"}, "n must be an integer, not str"),
        ({"n": 100_001}, "n must be between 1 and 100000"),
        ({"reason": ""}, "reason must be 1 to 500 characters"),
        ({"reason": "   "}, "reason must be 1 to 500 characters"),
        ({"reason": "x" * 501}, "reason must be 1 to 500 characters"),
        ({"reason": None}, "reason must be a string"),
        ({"reason": "a\x00"}, "NUL"),
        ({"search_id": "nope"}, "search_id 'nope' is not a UUID"),
        ({"search_id": 5}, "search_id must be a string"),
    ],
)
def test_consume_refuses_bad_input(
    side: Side, billing: Billing, kwargs: dict[str, Any], message: str
) -> None:
    user = billing.subscriber()
    args: dict[str, Any] = {"n": 1, "reason": "ok", **kwargs}
    with pytest.raises(InvalidInput, match=message):
        side.repo(Usage).consume(user, args.pop("n"), **args)
    assert billing.ledger(user) == []


def test_a_charge_for_an_unknown_search_is_refused(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    usage = side.repo(Usage)
    with pytest.raises(NotFound, match="no search with id"):
        usage.consume(user, reason="x", search_id=uuid.uuid4())
    other = billing.subscriber()
    theirs = Analyses(billing.conn).start_search(other, ["a.example"])
    with side.transaction():  # refused without an error: the transaction goes on
        with pytest.raises(NotFound, match=f"no search with id {theirs.id} of user {user}"):
            usage.consume(user, reason="x", search_id=theirs.id)
        assert usage.consume(user, reason="y") == 499
    assert billing.ledger(user) == [(1, "y")]


def test_bad_plans_and_trials(side: Side, billing: Billing) -> None:
    usage = side.repo(Usage)
    for price, message in [("", "expected a Stripe price id"), ("a b", "no spaces"), (7, "str")]:
        with pytest.raises(InvalidInput, match=message):
            usage.set_plan_limit(price, 5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="monthly_limit must be between 0"):
        usage.set_plan_limit("price_x", -1)
    with pytest.raises(InvalidInput, match="trial_limit must be an integer"):
        usage.set_plan_limit("price_x", 1, trial_limit=True)
    user = billing.subscriber(status="trialing", trial_days=7)
    for days in (0, 91, "3"):
        with pytest.raises(InvalidInput, match="days must be"):
            usage.extend_trial(user, days)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="period_start must be timezone-aware"):
        usage.give_back(user, 1, reason="x", period_start=datetime(2025, 1, 1))


# -- races -----------------------------------------------------------------------


def test_sixteen_threads_get_exactly_the_limit(side: Side, billing: Billing) -> None:
    user = billing.subscriber()

    refused_with: set[int] = set()

    def work(_: int) -> int:
        granted = 0
        with side.connect(Usage) as usage:
            for _ in range(100):
                try:
                    usage.consume(user, reason="race")
                    granted += 1
                except LimitExceeded as refused:
                    refused_with.add(refused.remaining)
        return granted

    results = run_threads(16, work)
    no_errors(results)
    assert sum(results) == 500
    assert refused_with == {0}  # never "1 remain" from a refused charge's old snapshot
    assert billing.sums(user) == {"charged": 500, "given_back": 0, "used": 500}
    billing.assert_balanced()


def test_charges_racing_a_renewal_and_give_backs_are_all_in_the_ledger(
    side: Side, billing: Billing
) -> None:
    user = billing.subscriber()
    sub = _subscription(billing, user)
    side.repo(Usage).set_plan_limit("price_test", 150)

    def work(i: int) -> tuple[str, int]:
        with side.connect(Usage) as usage:
            if i == 0:  # the renewal webhook, half-way
                for _ in range(20):
                    usage.allowance(user)
                now = datetime.now(UTC)
                sql.set_period.exec(
                    usage.conn, id=sub, period_start=now, period_end=now + timedelta(days=30)
                )
                return "renewed", 0
            if i == 1:  # an admin giving units back
                return "given", sum(
                    usage.give_back_units(user, 3, reason="admin").given for _ in range(30)
                )
            granted = 0
            for _ in range(60):
                try:
                    usage.consume(user, reason="race")
                    granted += 1
                except LimitExceeded:
                    pass
            return "granted", granted

    results = run_threads(8, work)
    no_errors(results)
    granted = sum(n for kind, n in results if kind == "granted")
    given = sum(n for kind, n in results if kind == "given")
    billing.assert_balanced()
    assert billing.sums(user) == {"charged": granted, "given_back": given, "used": granted - given}
    for period in sql.periods.many(billing.conn, user_id=user):
        assert 0 <= period["used"] <= 150


def _subscription(billing: Billing, user: uuid.UUID) -> uuid.UUID:
    row = sql.subscription_of.one(billing.conn, user_id=user)
    assert row is not None
    return uuid.UUID(str(row["id"]))


# -- CLI -------------------------------------------------------------------------


def cli(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["--database-url", db_url, *args])


def test_cli_usage_and_plans(db_url: str, billing: Billing, conn: psycopg.Connection[Any]) -> None:
    user = billing.subscriber()
    row = sql.email_of.one(conn, id=user)
    assert row is not None
    email = [row["email"]]
    Usage(conn).consume(user, 7, reason="search")
    shown = cli(db_url, "usage", "show", email[0].upper())
    assert shown.exit_code == 0, shown.output
    assert "allowance:  monthly" in shown.output
    assert "used:       7" in shown.output
    assert "remaining:  493" in shown.output
    given = cli(db_url, "usage", "give-back", email[0], "10", "--reason", "outage")
    assert given.output == f"gave back 7 of 10 unit(s) to {email[0]}: 500 remaining\n"
    assert billing.ledger(user)[-1] == (-7, "admin: outage")
    assert cli(db_url, "plan", "set", "price_test", "--monthly-limit", "900").exit_code == 0
    listed = cli(db_url, "plan", "list")
    assert listed.output.splitlines()[:2] == [
        "default\t500\t10\tAny price without a row of its own",
        "price_test\t900\t10\t",
    ]


def test_cli_extend_trial(db_url: str, billing: Billing, conn: psycopg.Connection[Any]) -> None:
    user = billing.make_user("trial@example.com")
    billing.subscribe(user, status="trialing", trial_days=7)
    result = cli(db_url, "usage", "extend-trial", "trial@example.com", "3")
    assert result.exit_code == 0
    assert "trial of trial@example.com now ends" in result.output
    assert "extend its trial in Stripe too" in result.output
    assert "allowance:  trial" in cli(db_url, "usage", "show", "trial@example.com").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["usage", "show", "nobody@example.com"], "error: no user with email 'nobody@example.com'"),
        (["usage", "give-back", "nobody@example.com", "1", "--reason", "x"], "error: no user"),
        (["usage", "extend-trial", "someone@example.com", "3"], "has no trialing subscription"),
        (["usage", "extend-trial", "someone@example.com", "120"], "days must be between 1 and 90"),
        (["plan", "set", "price x", "--monthly-limit", "5"], "error: price_id 'price x'"),
        (["plan", "set", "price_x", "--monthly-limit", "-5"], "monthly_limit must be between"),
    ],
)
def test_cli_errors_are_one_line(
    db_url: str, billing: Billing, args: list[str], message: str
) -> None:
    billing.make_user("someone@example.com")
    result = cli(db_url, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
