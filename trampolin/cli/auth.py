"""``trampolin user`` and ``trampolin auth``: people, their roles, and session upkeep."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from trampolin.cli.context import Context, pass_context

if TYPE_CHECKING:
    from trampolin.auth import User


@click.group("user")
def user_group() -> None:
    """Add users, give them a role, list them."""


@user_group.command("add")
@click.argument("email")
@click.option("--name", default=None, help="Display name.")
@click.option("--role", default=None, metavar="ROLE", help="Role to give (e.g. admin).")
@pass_context
def user_add(ctx: Context, email: str, name: str | None, role: str | None) -> None:
    """Create the user EMAIL (e.g. the initial admin: --role admin).

    The user and the role are written in one transaction: an unknown role
    leaves no user behind.
    """
    from trampolin.auth import AuthAdapter
    from trampolin.db import connect
    from trampolin.values import email_address

    email_address(email)
    with connect(ctx.url, autocommit=True) as conn, conn.transaction():
        auth = AuthAdapter(conn)
        user = auth.create_user(email=email, name=name)
        if role is not None:
            user = auth.set_role(user.id, role) or user
    click.echo(f"added {_describe(user)}")


@user_group.command("set-role")
@click.argument("email")
@click.argument("role")
@pass_context
def user_set_role(ctx: Context, email: str, role: str) -> None:
    """Give the user EMAIL the role ROLE (matched case-insensitively on EMAIL)."""
    from trampolin.auth import AuthAdapter
    from trampolin.db import connect
    from trampolin.errors import NotFound

    with connect(ctx.url, autocommit=True) as conn:
        auth = AuthAdapter(conn)
        user = auth.get_user_by_email(email)
        updated = auth.set_role(user.id, role) if user else None
        if updated is None:
            raise NotFound(f"no user with email {email!r} (add one with `trampolin user add`)")
    click.echo(f"updated {_describe(updated)}")


@user_group.command("list")
@click.option("--role", default=None, metavar="ROLE", help="Only users with this role.")
@pass_context
def user_list(ctx: Context, role: str | None) -> None:
    """List users by email: email, role, name, id (tab-separated)."""
    from trampolin.auth import AuthAdapter
    from trampolin.db import connect

    with connect(ctx.url, autocommit=True) as conn:
        auth = AuthAdapter(conn)
        users = auth.list_users() if role is None else auth.users_with_role(role)
    for user in users:
        click.echo(f"{user.email}\t{user.role or '-'}\t{user.name or ''}\t{user.id}")


@click.group("auth")
def auth_group() -> None:
    """Session and verification-token upkeep."""


@auth_group.command("prune")
@pass_context
def auth_prune(ctx: Context) -> None:
    """Delete expired sessions and verification tokens (run it from cron)."""
    from trampolin.auth import prune_expired
    from trampolin.db import connect

    with connect(ctx.url, autocommit=True) as conn:
        pruned = prune_expired(conn)
    click.echo(
        f"pruned {pruned.sessions} expired session(s) and "
        f"{pruned.verification_tokens} expired verification token(s)"
    )


def _describe(user: User) -> str:
    return f"{user.email} (role: {user.role or 'none'}, id: {user.id})"
