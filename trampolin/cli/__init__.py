"""The ``trampolin`` command line: parse, call the library, print.

Library modules are imported inside the commands, so that ``--help`` and
``migrate`` do not pay for stripe and friends. Every TrampolinError becomes
one line on stderr and its exit code; nothing prints a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from trampolin.cli.auth import auth_group, user_group
from trampolin.cli.backup import backup_group, dump_command, restore_command
from trampolin.cli.context import Context
from trampolin.cli.csv_uploads import csv_group
from trampolin.cli.database import db_group, seed_command
from trampolin.cli.doctor import doctor_command
from trampolin.cli.migrate import migrate_group
from trampolin.cli.stripe import stripe_group


class _Group(click.Group):
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


main.add_command(migrate_group)
main.add_command(seed_command)
main.add_command(db_group)
main.add_command(doctor_command)
main.add_command(dump_command)
main.add_command(restore_command)
main.add_command(backup_group)
main.add_command(user_group)
main.add_command(auth_group)
main.add_command(stripe_group)
main.add_command(csv_group)
