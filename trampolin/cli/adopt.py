"""``trampolin adopt prisma``: take over the Trampolin app's Prisma-made database."""

from __future__ import annotations

import json
import sys

import click

from trampolin.adopt import adopt_database
from trampolin.adopt import dry_run as plan
from trampolin.adopt_plan import Report, lines, report_as_json
from trampolin.cli.context import Context, pass_context
from trampolin.errors import AdoptionRefused


@click.group("adopt")
def adopt_group() -> None:
    """Take over a database another tool made."""


@adopt_group.command("prisma")
@click.option("--dry-run", is_flag=True, help="Change nothing: say what would move, and what not.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def adopt_prisma(ctx: Context, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Move every row of the app's Prisma tables into trampolin's, in one transaction.

    Applies trampolin's migrations, moves the rows (old ids and session
    tokens keep working), then moves the Prisma tables into schema
    prisma_archive: nothing is deleted. Any refused row, error or kill leaves
    the database as it was. Exit 0 when adopted (or adoptable, with --dry-run),
    1 when not.
    """
    url = ctx.direct_url("adopt prisma")
    report = plan(url)
    if dry_run or report.state == "already adopted" or not report.adoptable:
        _show(report, as_json)
        sys.exit(0 if report.adoptable else 1)
    if not yes:
        _show(report, machine=False, err=True)
        where = ctx.direct_target("adopt prisma").display
        click.confirm(f"adopt the Prisma database {where}?", abort=True, err=True)
    try:
        done = adopt_database(url, progress=lambda line: click.echo(line, err=True))
    except AdoptionRefused as exc:
        if exc.report is None:
            raise
        _show(exc.report, as_json)  # type: ignore[arg-type]
        sys.exit(1)
    _show(done, as_json)


def _show(report: Report, machine: bool, *, err: bool = False) -> None:
    if machine:
        click.echo(json.dumps(report_as_json(report), indent=2, ensure_ascii=False), err=err)
    else:
        for line in lines(report):
            click.echo(line, err=err)
