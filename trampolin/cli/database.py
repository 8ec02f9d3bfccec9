"""``trampolin seed`` and ``trampolin db``: seed data and where the database is."""

from __future__ import annotations

import click

from trampolin.cli.context import Context, pass_context


@click.command("seed")
@pass_context
def seed_command(ctx: Context) -> None:
    """Run sql/seed.sql (default roles); running it again changes nothing."""
    from trampolin.seed import run_seed, seed_path

    changed = run_seed(ctx.direct_url("seed"))
    click.echo(f"seeded {seed_path().name}: {changed} row(s) changed")


@click.group("db")
def db_group() -> None:
    """Where the database is."""


@db_group.command("url")
@click.option("--show-password", is_flag=True, help="Print the password too (for scripts).")
@click.option("--direct", is_flag=True, help="The URL migrate and dump use (DIRECT_URL first).")
@pass_context
def db_url(ctx: Context, show_password: bool, direct: bool) -> None:
    """Print the database URL trampolin would use (password hidden)."""
    target = ctx.direct_target("migrate") if direct else ctx.target()
    click.echo(target.url if show_password else target.display)


@db_group.command("stop-embedded")
def db_stop_embedded() -> None:
    """Stop this project's embedded local PostgreSQL (its data is kept)."""
    from trampolin.embedded import data_dir, stop

    if stop():
        click.echo(f"stopped the embedded PostgreSQL in {data_dir()}")
    else:
        click.echo(f"no embedded PostgreSQL running in {data_dir()}")
