"""``trampolin stripe``: the webhook event log, replay, and feeding saved events."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from trampolin.cli.context import Context, pass_context
from trampolin.db import connect
from trampolin.errors import InvalidInput
from trampolin.subscriptions import (
    MAX_EVENTS_LIMIT,
    RECORDED_OUTCOMES,
    REPLAYABLE,
    Subscriptions,
)


@click.group("stripe")
def stripe_group() -> None:
    """Stripe webhook events: list, replay, apply saved ones."""


@stripe_group.command("events")
@click.option(
    "--outcome", type=click.Choice(RECORDED_OUTCOMES), help="Only events with this outcome."
)
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(min=1, max=MAX_EVENTS_LIMIT)
)
@pass_context
def stripe_events(ctx: Context, outcome: str | None, limit: int) -> None:
    """List recorded events, newest first."""
    with connect(ctx.url, autocommit=True) as conn:
        events = Subscriptions(conn).events(outcome, limit=limit)
    for e in events:
        line = (
            f"{e.received_at:%Y-%m-%d %H:%M:%S}  {e.outcome:<9}  {e.id}  {e.type}"
            f"  {e.stripe_customer_id or '-'}  {e.stripe_subscription_id or '-'}"
        )
        click.echo(line + (f"  error: {e.error}" if e.error else ""))
    if not events:
        click.echo("no events" + (f" with outcome {outcome}" if outcome else ""))


@stripe_group.command("replay")
@click.option(
    "--outcome",
    type=click.Choice(REPLAYABLE),
    default="unmatched",
    show_default=True,
    help="Which events to apply again.",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@pass_context
def stripe_replay(ctx: Context, outcome: str, limit: int | None) -> None:
    """Apply unmatched (no user yet) or failed events again, oldest first."""
    with connect(ctx.url, autocommit=True) as conn:
        results = Subscriptions(conn).replay(
            outcome,
            limit=limit,
            on_event=lambda event_id, result: click.echo(f"{event_id} {result}"),
        )
    counts = Counter(results.values())
    summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "nothing to do"
    click.echo(f"replayed {len(results)} {outcome} event(s): {summary}")


@stripe_group.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
def stripe_apply(ctx: Context, file: Path) -> None:
    """Apply a saved Stripe event JSON file (after an outage); safe to repeat.

    The file is trusted: no signature is checked. Exit code 1 if applying failed.
    """
    try:
        event = json.loads(file.read_bytes())
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidInput(f"{file}: not JSON ({exc})") from None
    if not isinstance(event, dict):
        raise InvalidInput(f"{file}: not a Stripe event (expected a JSON object)")
    with connect(ctx.url, autocommit=True) as conn:
        subs = Subscriptions(conn)
        outcome = subs.apply_stripe_event(event)
        recorded = subs.event(str(event.get("id")))
        error = f" ({recorded.error})" if recorded and recorded.error else ""
    click.echo(f"{event.get('id')} {event.get('type')}: {outcome}{error}")
    if outcome == "failed":
        raise click.exceptions.Exit(1)
