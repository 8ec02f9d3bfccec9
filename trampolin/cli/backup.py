"""``trampolin dump``, ``trampolin restore`` and ``trampolin backup verify``.

A progress bar by bytes goes to stderr when it is a terminal (``--quiet``
silences it); the summary goes to stdout, so that cron mails and CI logs show
one result line per run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from trampolin.backup import Progress, drop_abandoned_scratch, dump, restore, verify
from trampolin.cli.context import Context, human_size, pass_context
from trampolin.config import target_option
from trampolin.embedded import server_url
from trampolin.migration_files import MigrationStatus

_quiet = click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes on stderr.")


@contextmanager
def _progress(quiet: bool, label: str) -> Iterator[Progress | None]:
    """A progress bar on stderr, by bytes; None (nothing to draw, and nothing for the
    library to measure) with --quiet or when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(
        length=1, label=label, file=sys.stderr, item_show_func=lambda item: item
    ) as bar:

        def advance(done: int, total: int, what: str) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos, what or None)

        yield advance


def _migration_summary(statuses: tuple[MigrationStatus, ...]) -> str:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status.state] = counts.get(status.state, 0) + 1
    if not counts:
        return "migrations: none recorded (not a trampolin database?)"
    return "migrations: " + ", ".join(f"{count} {state}" for state, count in counts.items())


@click.command("dump")
@click.option(
    "--output",
    "-o",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive file to write (pg_dump custom format).",
)
@_quiet
@pass_context
def dump_command(ctx: Context, output: Path, quiet: bool) -> None:
    """Dump the database to FILE with pg_dump -F c -b (schema, data, large objects)."""
    url = ctx.direct_url("dump")
    with _progress(quiet, "dumping") as progress:
        result = dump(url, output, progress=progress)
    click.echo(
        f"dumped {result.tables} tables to {result.path}: {human_size(result.size)} "
        f"in {result.seconds:.1f}s ({result.tool})"
    )


@click.command("restore")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--target",
    metavar="URL",
    help="Database to restore into; default --database-url / $DATABASE_URL.",
)
@click.option("--yes", is_flag=True, help="Replace the tables of a target that holds data.")
@_quiet
@pass_context
def restore_command(
    ctx: Context, archive: Path, target: str | None, yes: bool, quiet: bool
) -> None:
    """Restore ARCHIVE in one transaction (all or nothing), then show migration status.

    Refuses a target that already holds tables unless --yes.
    """
    url = target_option(target, "restore").url if target else ctx.direct_url("restore")
    with _progress(quiet, "restoring") as progress:
        result = restore(archive, url, yes=yes, progress=progress)
    replaced = f", replacing {len(result.replaced)} table(s)" if result.replaced else ""
    click.echo(
        f"restored {result.archive} into {result.target}: {result.tables} tables "
        f"in {result.seconds:.1f}s{replaced} ({result.tool})"
    )
    for status in result.migrations:
        click.echo(f"  {status.state:<8} {status.id}")
    click.echo(_migration_summary(result.migrations))


@click.group("backup")
def backup_group() -> None:
    """Check backups: restore them somewhere safe and look."""


@backup_group.command("verify")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--embedded",
    is_flag=True,
    help="Restore into the embedded local server instead of the database's server.",
)
@_quiet
@pass_context
def verify_command(ctx: Context, archive: Path, embedded: bool, quiet: bool) -> None:
    """Prove that ARCHIVE restores: exit 0 if it does, 1 (one error line) if not.

    Restores into a scratch database (dropped afterwards), then checks the
    archive's listing, the migration records, that every table the recorded
    migrations create is there, and counts each table's rows.
    """
    url = server_url("postgres") if embedded else ctx.direct_url("backup verify")
    for name in drop_abandoned_scratch(url):
        if not quiet:
            click.echo(f"dropped scratch database {name}, left by a killed verify", err=True)
    with _progress(quiet, "restoring") as progress:
        result = verify(archive, url, progress=progress)
    for table in result.tables:
        click.echo(f"  {table.qualified:<45} {table.rows:>12,} rows")
    click.echo(_migration_summary(result.migrations))
    total = sum(table.rows for table in result.tables)
    click.echo(
        f"ok: {result.archive} ({human_size(result.size)}, pg_dump {result.listing.dumped_by}, "
        f"from PostgreSQL {result.listing.dumped_from}) restores: {len(result.tables)} tables, "
        f"{total:,} rows, checked in {result.seconds:.1f}s on {result.scratch}"
    )
