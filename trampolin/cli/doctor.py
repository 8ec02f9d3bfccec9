"""``trampolin doctor``: what needs action before a deploy or a service can rely on the database."""

from __future__ import annotations

import json
import sys

import click

from trampolin import doctor
from trampolin.cli.context import Context, pass_context

MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "info": "    "}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def doctor_command(ctx: Context, as_json: bool) -> None:
    """Check the URLs, the server, the pooler, migrations, seed roles and client tools.

    Exit code 1 when something needs action.
    """
    checks = doctor.run_checks(ctx.target, lambda: ctx.direct_target("migrate"))
    if as_json:
        report = {"ok": not doctor.needs_action(checks), "checks": doctor.as_json(checks)}
        click.echo(json.dumps(report, indent=2))
    else:
        for check in checks:
            click.echo(f"{MARKS[check.level]}  {check.name:<18} {check.detail}")
    if doctor.needs_action(checks):
        sys.exit(1)
