"""``trampolin usage`` and ``trampolin plan``: allowances, give-backs, trials, plan limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NoReturn

import click
from psycopg import Connection

from trampolin.auth import AuthAdapter, User
from trampolin.cli.context import Context, pass_context
from trampolin.db import connect
from trampolin.errors import NotFound
from trampolin.usage import Usage


@click.group("usage")
def usage_group() -> None:
    """A user's usage allowance: show it, give units back, extend a trial."""


@usage_group.command("show")
@click.argument("email")
@pass_context
def usage_show(ctx: Context, email: str) -> None:
    """Show the allowance of the user EMAIL in the current period."""

    with connect(ctx.url, autocommit=True) as conn:
        user = _user(conn, email)
        allowance = Usage(conn).allowance(user.id)
    if allowance is None:  # deleted since it was looked up
        _no_user(email)
    if allowance.unlimited:
        kind, limit, remaining = "unlimited (admin)", "-", "-"
    else:
        kind = "trial" if allowance.trialing else "monthly"
        if allowance.period_start is None:
            kind = "none (no subscription that grants access)"
        limit, remaining = str(allowance.limit), str(allowance.remaining)
    click.echo(f"user:       {user.email} ({user.id})")
    click.echo(f"allowance:  {kind}")
    click.echo(f"limit:      {limit}")
    click.echo(f"used:       {allowance.used}")
    click.echo(f"remaining:  {remaining}")
    click.echo(f"period:     {_when(allowance.period_start)} .. {_when(allowance.period_end)}")


@usage_group.command("give-back")
@click.argument("email")
@click.argument("units", type=int)
@click.option("--reason", required=True, help="Why (kept in the usage ledger).")
@pass_context
def usage_give_back(ctx: Context, email: str, units: int, reason: str) -> None:
    """Give UNITS back to the user EMAIL in the current period (never below 0 used)."""

    with connect(ctx.url, autocommit=True) as conn:
        user = _user(conn, email)
        result = Usage(conn).give_back_units(user.id, units, reason=f"admin: {reason}")
    left = "unlimited" if result.remaining is None else f"{result.remaining} remaining"
    click.echo(f"gave back {result.given} of {units} unit(s) to {user.email}: {left}")


@usage_group.command("extend-trial")
@click.argument("email")
@click.argument("days", type=int)
@pass_context
def usage_extend_trial(ctx: Context, email: str, days: int) -> None:
    """Extend the trial of the user EMAIL by DAYS days (1 to 90)."""

    with connect(ctx.url, autocommit=True) as conn:
        user = _user(conn, email)
        extension = Usage(conn).extend_trial(user.id, days)
    if extension is None:
        raise NotFound(f"{user.email} has no trialing subscription")
    click.echo(f"trial of {user.email} now ends {_when(extension.trial_end)}")
    if extension.stripe_subscription_id is not None:
        click.echo(
            f"note: {extension.stripe_subscription_id} is a Stripe subscription: extend its trial "
            "in Stripe too, or Stripe ends it as before and its next event sets the old end back",
            err=True,
        )


@click.group("plan")
def plan_group() -> None:
    """Plans: the allowance of each Stripe price."""


@plan_group.command("set")
@click.argument("price_id")
@click.option("--monthly-limit", type=int, required=True, help="Units per month.")
@click.option("--trial-limit", type=int, default=None, help="Units during a trial.")
@pass_context
def plan_set(ctx: Context, price_id: str, monthly_limit: int, trial_limit: int | None) -> None:
    """Set the limits of PRICE_ID (the price 'default' covers every price without a plan)."""

    with connect(ctx.url, autocommit=True) as conn:
        plan = Usage(conn).set_plan_limit(price_id, monthly_limit, trial_limit=trial_limit)
    click.echo(
        f"plan {plan.price_id}: {plan.monthly_limit} per month, {plan.trial_limit} during a trial"
    )


@plan_group.command("list")
@pass_context
def plan_list(ctx: Context) -> None:
    """List plans: price, monthly limit, trial limit, name (tab-separated)."""

    with connect(ctx.url, autocommit=True) as conn:
        plans = Usage(conn).plans()
    for plan in plans:
        click.echo(f"{plan.price_id}\t{plan.monthly_limit}\t{plan.trial_limit}\t{plan.name or ''}")


def _user(conn: Connection[object], email: str) -> User:

    user = AuthAdapter(conn).get_user_by_email(email)
    if user is None:
        _no_user(email)
    return user


def _no_user(email: str) -> NoReturn:

    raise NotFound(f"no user with email {email!r}")


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
