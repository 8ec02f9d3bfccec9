"""``trampolin refunds``: the audit of Stripe refunds."""

from __future__ import annotations

import click

from trampolin.cli.context import Context, pass_context
from trampolin.db import connect
from trampolin.refunds import Refunds


@click.group("refunds")
def refunds_group() -> None:
    """Stripe refunds as recorded: who issued each, and its status."""


@refunds_group.command("list")
@click.option("--limit", type=int, default=100, show_default=True, help="How many, newest first.")
@pass_context
def refunds_list(ctx: Context, limit: int) -> None:
    """List refunds, newest first: when, refund, amount, status, customer, admin (tab-separated)."""

    with connect(ctx.url, autocommit=True) as conn:
        refunds = Refunds(conn).list(limit=limit)
    for r in refunds:
        amount = f"{r.amount / 100:.2f} {r.currency.upper()}"
        admin = r.admin_email or "-"
        if r.admin_email and r.admin_user_id is None:
            admin += " (deleted)"
        click.echo(
            f"{r.created_at:%Y-%m-%d %H:%M}\t{r.stripe_refund_id}\t{amount}\t{r.status}\t"
            f"{r.customer_email or '-'}\t{admin}"
        )
