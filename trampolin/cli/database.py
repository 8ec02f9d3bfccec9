"""``trampolin seed`` and ``trampolin db``: seed data, where the database is, waiting for it."""

from __future__ import annotations

import click

from trampolin import embedded
from trampolin.cli.context import Context, Seconds, pass_context
from trampolin.seed import run_seed, seed_path


@click.command("seed")
@pass_context
def seed_command(ctx: Context) -> None:
    """Run sql/seed.sql (default roles); running it again changes nothing."""
    changed = run_seed(ctx.direct_url("seed"))
    click.echo(f"seeded {seed_path().name}: {changed} row(s) changed")


@click.group("db")
def db_group() -> None:
    """Where the database is, and waiting for it."""


_direct = click.option(
    "--direct", is_flag=True, help="The URL migrate and dump use (DIRECT_URL first)."
)


@db_group.command("url")
@click.option("--show-password", is_flag=True, help="Print the password too (for scripts).")
@_direct
@pass_context
def db_url(ctx: Context, show_password: bool, direct: bool) -> None:
    """Print the database URL trampolin would use (password hidden)."""
    target = ctx.direct_target("migrate") if direct else ctx.target()
    click.echo(target.url if show_password else target.display)


@db_group.command("wait")
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=Seconds(),
    metavar="SECONDS",
    help="Give up after this long.",
)
@_direct
@pass_context
def db_wait(ctx: Context, timeout: float, direct: bool) -> None:
    """Wait until the database accepts connections, retrying with backoff (for deploys).

    Exit code 2, with one line, when it does not within the timeout.
    """
    target = ctx.direct_target("migrate") if direct else ctx.target()
    seconds = ctx.wait_for(target, timeout)
    click.echo(f"ready: {target.display} ({seconds:.1f}s)")


@db_group.command("stop-embedded")
def db_stop_embedded() -> None:
    """Stop this project's embedded local PostgreSQL (its data is kept)."""
    if embedded.stop():
        click.echo(f"stopped the embedded PostgreSQL in {embedded.data_dir()}")
    else:
        click.echo(f"no embedded PostgreSQL running in {embedded.data_dir()}")
