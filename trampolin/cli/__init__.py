"""The ``trampolin`` command line: parse, call the library, print.

Each command's module is imported when that command runs (``--help`` imports
them all), and library modules inside the commands, so that a command pays
only for what it uses. Every TrampolinError becomes one line on stderr and its
exit code; nothing prints a traceback.
"""

from __future__ import annotations

import gc
import signal
import sys
from importlib import import_module
from types import FrameType
from typing import Any

import click

from trampolin.cli.context import Context

# Command name -> "module:attribute" of its click command or group.
_COMMANDS = {
    "migrate": "migrate:migrate_group",
    "seed": "database:seed_command",
    "db": "database:db_group",
    "doctor": "doctor:doctor_command",
    "dump": "backup:dump_command",
    "restore": "backup:restore_command",
    "backup": "backup:backup_group",
    "user": "auth:user_group",
    "auth": "auth:auth_group",
    "stripe": "stripe:stripe_group",
    "csv": "csv_uploads:csv_group",
    "usage": "usage:usage_group",
    "plan": "usage:plan_group",
    "refunds": "refunds:refunds_group",
}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = _COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, attribute = where.split(":")
        command = getattr(import_module(f"trampolin.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            _exit_with(exc)


_MIGRATE_HINT = " (is the database migrated? run `trampolin migrate`)"
_HINTS = {
    "42P01": _MIGRATE_HINT,  # undefined table
    "42883": _MIGRATE_HINT,  # undefined function
    "3F000": " (the URL's ?schema= or search_path names a schema that does not exist: "
    "CREATE SCHEMA it first)",
}


def _exit_with(exc: Exception) -> None:
    from trampolin.errors import TrampolinError

    if isinstance(exc, TrampolinError):
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    if type(exc).__module__.startswith("psycopg"):
        from trampolin.config import redact

        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        hint = _HINTS.get(getattr(exc, "sqlstate", None) or "", "")
        click.echo(f"error: database: {redact(first)}{hint}", err=True)
        sys.exit(1)
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {where}{exc.strerror}", err=True)
        sys.exit(1)
    raise exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    metavar="URL",
    help="PostgreSQL URL; default $DATABASE_URL, else the embedded local server.",
)
@click.option(
    "--direct-url",
    metavar="URL",
    help="Direct (non-pooled) URL for migrate, seed, dump, restore, verify; default $DIRECT_URL.",
)
@click.version_option(package_name="trampolin")
@click.pass_context
def main(ctx: click.Context, database_url: str | None, direct_url: str | None) -> None:
    """Trampolin's PostgreSQL data layer: migrations, seed data and operations."""
    ctx.obj = Context(database_url, direct_url)


def run() -> None:
    """The console script: main(), in a process that ends with it.

    SIGTERM (a deploy's timeout, systemd, Kubernetes) ends it as Ctrl-C would:
    through every ``finally``, so that no temporary PGPASSFILE or half-written
    dump is left behind and a running pg_dump / pg_restore is stopped. The
    objects alive at the end are frozen, so that the exiting interpreter does
    not walk them all in its final garbage collections (~12 ms of a restore's
    start-to-end otherwise).
    """
    signal.signal(signal.SIGTERM, _terminated)
    try:
        main()
    finally:
        gc.freeze()


def _terminated(signum: int, frame: FrameType | None) -> None:
    click.echo("terminated", err=True)
    sys.exit(128 + signum)
