"""``trampolin migrate``: apply, status, new, rollback."""

from __future__ import annotations

import json
import sys

import click

from trampolin.cli.context import Context, Seconds, pass_context
from trampolin.migration_files import new_migration
from trampolin.migrations import DEFAULT_LOCK_TIMEOUT, DEFAULT_LOCK_WAIT, Migrator

EXIT_PENDING = 3
EXIT_DRIFT = 4

_lock_timeout = click.option(
    "--lock-timeout",
    default=None,
    metavar="DURATION",
    envvar="TRAMPOLIN_LOCK_TIMEOUT",
    help="PostgreSQL lock_timeout per migration (default 5s; env TRAMPOLIN_LOCK_TIMEOUT).",
)
_lock_wait = click.option(
    "--lock-wait",
    default=DEFAULT_LOCK_WAIT,
    show_default=True,
    type=Seconds(),
    metavar="SECONDS",
    help="Seconds to wait for another migrate to finish.",
)
_wait = click.option(
    "--wait",
    "wait_seconds",
    default=0.0,
    type=Seconds(),
    metavar="SECONDS",
    help="Wait this long for the database to accept connections (deploys that start "
    "before it), retrying with backoff.",
)


def _migrator(
    ctx: Context, lock_timeout: str | None = None, lock_wait: float = DEFAULT_LOCK_WAIT
) -> Migrator:
    return Migrator(
        ctx.direct_url("migrate"),
        lock_timeout=lock_timeout or DEFAULT_LOCK_TIMEOUT,
        lock_wait=lock_wait,
        report=click.echo,
    )


def _apply(ctx: Context, lock_timeout: str | None, lock_wait: float, wait_seconds: float) -> None:
    ctx.wait_seconds = wait_seconds
    applied = _migrator(ctx, lock_timeout, lock_wait).apply()
    if applied:
        click.echo(f"{len(applied)} migration(s) applied")
    else:
        click.echo("nothing to apply: the database is up to date")


@click.group("migrate", invoke_without_command=True)
@_lock_timeout
@_lock_wait
@_wait
@pass_context
@click.pass_context
def migrate_group(
    click_ctx: click.Context,
    ctx: Context,
    lock_timeout: str | None,
    lock_wait: float,
    wait_seconds: float,
) -> None:
    """Apply every pending migration (safe on every deploy)."""
    if click_ctx.invoked_subcommand is None:
        _apply(ctx, lock_timeout, lock_wait, wait_seconds)


@migrate_group.command("deploy")
@_lock_timeout
@_lock_wait
@_wait
@pass_context
def migrate_deploy(
    ctx: Context, lock_timeout: str | None, lock_wait: float, wait_seconds: float
) -> None:
    """Apply every pending migration (the same as plain `migrate`)."""
    _apply(ctx, lock_timeout, lock_wait, wait_seconds)


@migrate_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def migrate_status(ctx: Context, as_json: bool) -> None:
    """List applied and pending migrations.

    Exit code 0 when up to date, 3 when migrations are pending, 4 when an
    applied migration was edited or deleted.
    """
    statuses = _migrator(ctx).status()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": status.id,
                        "state": status.state,
                        "description": status.description,
                        "applied_at": status.applied_at.isoformat() if status.applied_at else None,
                    }
                    for status in statuses
                ],
                indent=2,
            )
        )
    else:
        for status in statuses:
            when = status.applied_at.strftime("%Y-%m-%d %H:%M:%S") if status.applied_at else ""
            line = f"{status.state:<8} {status.id:<40} {when:<19}  {status.description}"
            click.echo(line.rstrip())
    states = {status.state for status in statuses}
    if states & {"edited", "missing"}:
        sys.exit(EXIT_DRIFT)
    if "pending" in states:
        sys.exit(EXIT_PENDING)


@migrate_group.command("new")
@click.argument("name")
def migrate_new(name: str) -> None:
    """Create the next migration NAME (and its rollback file) in sql/migrations/."""
    forward, rollback = new_migration(name)
    click.echo(f"created {forward}")
    click.echo(f"created {rollback}")


@migrate_group.command("rollback")
@click.option(
    "--count",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many to roll back.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_lock_timeout
@pass_context
def migrate_rollback(ctx: Context, count: int, yes: bool, lock_timeout: str | None) -> None:
    """Roll back the most recently applied migrations, newest first.

    Rollback files usually drop tables and their data: it asks first,
    unless --yes.
    """
    migrator = _migrator(ctx, lock_timeout)
    plan = migrator.rollback_plan(count)
    if not plan:
        click.echo("nothing to roll back")
        return
    if not yes:
        where = ctx.direct_target("migrate rollback").display
        click.confirm(
            f"roll back {', '.join(plan)} on {where}? Their rollback files may drop data",
            abort=True,
            err=True,
        )
    migrator.rollback(count, expected=plan)
