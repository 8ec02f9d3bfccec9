"""``trampolin doctor``: what needs action before a deploy or a service can rely on the database."""

from __future__ import annotations

import json
import sys

import click

from trampolin.cli.context import Context, pass_context

MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "info": "    "}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_context
def doctor_command(ctx: Context, as_json: bool) -> None:
    """Check the URLs, the server, the pooler, migrations, seed roles and client tools.

    Exit code 1 when something needs action.
    """
    from trampolin.doctor import as_json as checks_as_json
    from trampolin.doctor import needs_action, run_checks

    checks = run_checks(ctx.target, lambda: ctx.direct_target("migrate"))
    if as_json:
        click.echo(
            json.dumps({"ok": not needs_action(checks), "checks": checks_as_json(checks)}, indent=2)
        )
    else:
        for check in checks:
            click.echo(f"{MARKS[check.level]}  {check.name:<18} {check.detail}")
    if needs_action(checks):
        sys.exit(1)
