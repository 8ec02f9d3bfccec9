"""``trampolin user`` and ``trampolin auth``: people, their passwords and roles, session upkeep.

A password is asked twice on the terminal (never shown) or read from stdin
(``--password-stdin``); never from an argument or an environment variable,
where ``ps`` and other users could read it, and never printed.
"""

from __future__ import annotations

import os
import sys

import click

from trampolin.auth import AuthAdapter, User, UserDependents, prune_expired
from trampolin.cli.context import Context, pass_context
from trampolin.db import connect
from trampolin.errors import Conflict, InvalidInput, InvalidPassword, NotFound
from trampolin.passwords import new_password
from trampolin.values import email_address

_STDIN_HELP = "Read the password from standard input (all of it; one final newline is dropped)."


@click.group("user")
def user_group() -> None:
    """Add users, set their passwords, give them a role, list and delete them."""


@user_group.command("add")
@click.argument("email")
@click.option("--name", default=None, help="Display name.")
@click.option("--role", default=None, metavar="ROLE", help="Role to give (e.g. admin).")
@click.option("--password-prompt", is_flag=True, help="Ask for a password on the terminal.")
@click.option("--password-stdin", is_flag=True, help=_STDIN_HELP)
@pass_context
def user_add(
    ctx: Context,
    email: str,
    name: str | None,
    role: str | None,
    password_prompt: bool,
    password_stdin: bool,
) -> None:
    """Create the user EMAIL (e.g. the initial admin: --role admin --password-prompt).

    Without a password option the user has none (and signs in some other way,
    or gets one with `trampolin user set-password`). The user, the password and
    the role are written in one transaction: an unknown role leaves no user.
    """

    if password_prompt and password_stdin:
        raise InvalidInput("choose one of --password-prompt and --password-stdin")
    email_address(email)
    password = _password_from_stdin() if password_stdin else None
    with connect(ctx.url, autocommit=True) as conn:
        auth = AuthAdapter(conn)
        if password_prompt:
            if auth.get_user_by_email(email) is not None:  # before anyone types a password
                raise Conflict(f"a user with email {email!r} already exists")
            password = _password_from_terminal()
        with conn.transaction():
            user = auth.create_user(email=email, name=name, password=password)
            if role is not None:
                user = auth.set_role(user.id, role) or user
    click.echo(f"added {_describe(user)}")


@user_group.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help=_STDIN_HELP)
@pass_context
def user_set_password(ctx: Context, email: str, password_stdin: bool) -> None:
    """Set the password of the user EMAIL, asked twice on the terminal (or --password-stdin).

    The user's sessions stay signed in; a reset by e-mail (reset_password) ends them.
    """

    password = _password_from_stdin() if password_stdin else None
    with connect(ctx.url, autocommit=True) as conn:
        auth = AuthAdapter(conn)
        user = _existing(auth, email)
        if password is None:
            password = _password_from_terminal()
        auth.set_password(user.id, password)
    click.echo(f"password set for {user.email}")


@user_group.command("set-role")
@click.argument("email")
@click.argument("role")
@pass_context
def user_set_role(ctx: Context, email: str, role: str) -> None:
    """Give the user EMAIL the role ROLE (matched case-insensitively on EMAIL)."""

    with connect(ctx.url, autocommit=True) as conn:
        auth = AuthAdapter(conn)
        updated = auth.set_role(_existing(auth, email).id, role)
    if updated is None:  # deleted meanwhile
        raise NotFound(f"no user with email {email!r}")
    click.echo(f"updated {_describe(updated)}")


@user_group.command("list")
@click.option("--role", default=None, metavar="ROLE", help="Only users with this role.")
@pass_context
def user_list(ctx: Context, role: str | None) -> None:
    """List users by email: email, role, name, id, password or - (tab-separated)."""

    with connect(ctx.url, autocommit=True) as conn:
        auth = AuthAdapter(conn)
        users = auth.list_users() if role is None else auth.users_with_role(role)
    for user in users:
        password = "password" if user.has_password else "-"
        click.echo(f"{user.email}\t{user.role or '-'}\t{user.name or ''}\t{user.id}\t{password}")


@user_group.command("delete")
@click.argument("email")
@click.option("--yes", "-y", is_flag=True, help="Do not ask first (for scripts).")
@pass_context
def user_delete(ctx: Context, email: str, yes: bool) -> None:
    """Delete the user EMAIL and all that is theirs: sessions, accounts, subscriptions,
    CSV uploads and their rows. Asks first, unless --yes.

    Subscriptions are deleted here only: Stripe is not told, so cancel any that
    has not ended there first.
    """

    with connect(ctx.url, autocommit=True) as conn:
        auth = AuthAdapter(conn)
        user = _existing(auth, email)
        dependents = auth.user_dependents(user.id)
        assert dependents is not None
        summary = f"{user.email} with {_dependents(dependents)}"
        if dependents.live_subscriptions:
            click.echo(
                f"warning: {dependents.live_subscriptions} subscription(s) not ended in Stripe: "
                "deleting them here does not cancel them there",
                err=True,
            )
        if not yes and not _confirmed(f"delete {summary}?"):
            click.echo("nothing deleted", err=True)
            sys.exit(1)
        auth.delete_user(user.id)
    click.echo(f"deleted {summary}")


@click.group("auth")
def auth_group() -> None:
    """Session and verification-token upkeep."""


@auth_group.command("prune")
@pass_context
def auth_prune(ctx: Context) -> None:
    """Delete expired sessions and verification tokens (run it from cron)."""

    with connect(ctx.url, autocommit=True) as conn:
        pruned = prune_expired(conn)
    click.echo(
        f"pruned {pruned.sessions} expired session(s) and "
        f"{pruned.verification_tokens} expired verification token(s)"
    )


def _existing(auth: AuthAdapter, email: str) -> User:
    """The user with that email (any letter case); NotFound saying how to add one."""

    user = auth.get_user_by_email(email)
    if user is None:
        raise NotFound(f"no user with email {email!r} (add one with `trampolin user add`)")
    return user


def _password_from_stdin() -> str:
    """All of stdin less one final newline, checked by the password policy."""

    try:
        password = sys.stdin.buffer.read().decode()
    except UnicodeDecodeError:
        raise InvalidPassword("the password on stdin is not UTF-8 text") from None
    password = password.removesuffix("\n").removesuffix("\r")
    new_password(password)  # InvalidPassword before anything is written
    return password


def _password_from_terminal() -> str:
    """A new password typed twice on the terminal, never shown; asks again until valid."""

    if not (sys.stdin.isatty() and _has_terminal()):
        raise InvalidInput(
            "no terminal to ask for the password on: pipe it in with --password-stdin"
        )
    while True:
        password: str = click.prompt("New password", hide_input=True, err=True)
        try:
            new_password(password)
        except InvalidPassword as exc:
            click.echo(f"{exc}; try again", err=True)
            continue
        if click.prompt("Repeat it", hide_input=True, err=True) == password:
            return password
        click.echo("the two entries differ; try again", err=True)


def _has_terminal() -> bool:
    """Whether /dev/tty opens: where getpass asks. Without it getpass would read stdin
    with echo on, showing the password, so we refuse instead."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _confirmed(question: str) -> bool:
    """The answer to a yes/no question on the terminal (or stdin); no answer is no."""
    try:
        return click.confirm(question, err=True)
    except click.Abort:
        click.echo("", err=True)
        return False


def _dependents(gone: UserDependents) -> str:
    parts = [
        f"{gone.sessions} session(s)",
        f"{gone.accounts} account(s)",
        f"{gone.subscriptions} subscription(s)",
        f"{gone.csv_uploads} CSV upload(s) ({gone.csv_rows} row(s))",
        f"{gone.searches} search(es) with {gone.url_analyses} URL analysis(es)",
    ]
    return ", ".join(parts)


def _describe(user: User) -> str:
    password = "password set" if user.has_password else "no password"
    return f"{user.email} (role: {user.role or 'none'}, id: {user.id}, {password})"
