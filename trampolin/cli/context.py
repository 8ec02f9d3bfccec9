"""What every command shares: the database it works on, found on first use.

--database-url and --direct-url (before or after the command), else the
environment (trampolin.config); with neither, the embedded server of this
project, started here (config never starts anything) and named on stderr.
Before a command first uses the database, it may wait for it (--wait), and it
refuses a database that Prisma made and trampolin has not taken over, unless
the command is one of PRISMA_SAFE_COMMANDS.
"""

from __future__ import annotations

import math
from typing import Any

import click

from trampolin import config, embedded
from trampolin.config import DatabaseTarget
from trampolin.db import connect, wait_until_reachable
from trampolin.errors import ConnectionFailed
from trampolin.migrations import refuse_unadopted_prisma

# Commands that work on a database Prisma made: they read it as it is
# (a dump before the take-over, doctor, the URL) or take it over.
PRISMA_SAFE_COMMANDS = frozenset({"adopt", "backup", "db", "doctor", "dump"})


class Context:
    def __init__(
        self,
        database_url_option: str | None = None,
        direct_url_option: str | None = None,
        *,
        command: str | None = None,
    ) -> None:
        self.database_url_option = database_url_option
        self.direct_url_option = direct_url_option
        self.command = command
        self.wait_seconds = 0.0  # how long the first connection may wait for the server
        self._target: DatabaseTarget | None = None
        self._direct: DatabaseTarget | None = None
        self._ready: set[str] = set()

    def target(self) -> DatabaseTarget:
        """The database for services and queries; may be a pooler. Not checked (see url)."""
        if self._target is None:
            found = config.database_target(self.database_url_option)
            self._target = found or _start_embedded()
            _announce(self._target)
        return self._target

    def direct_target(self, purpose: str = "this command") -> DatabaseTarget:
        """The database for session-level work (DIRECT_URL first); never a pooler flagged
        ?pgbouncer=true. Not checked (see direct_url)."""
        if self._direct is None:
            found = config.direct_target(
                self.direct_url_option, self.database_url_option, purpose=purpose
            )
            if found is None:
                self._direct = self.target()
            else:
                self._direct = found
                _announce(found)
        return self._direct

    @property
    def url(self) -> str:
        """The service database URL (DATABASE_URL), ready for the command."""
        return self._ready_url(self.target())

    def direct_url(self, purpose: str = "this command") -> str:
        """The URL for session-level work (migrate, seed, dump, restore, verify), ready."""
        return self._ready_url(self.direct_target(purpose))

    def wait_for(self, target: DatabaseTarget, timeout: float) -> float:
        """Seconds until ``target`` accepted a connection, saying on stderr what it waits for."""
        told = False

        def tell(exc: ConnectionFailed) -> None:
            nonlocal told
            if not told:
                click.echo(f"waiting up to {timeout:g}s for {target.display}: {exc}", err=True)
                told = True

        seconds = wait_until_reachable(target.url, timeout, on_retry=tell)
        if told:
            click.echo(f"{target.display} accepts connections after {seconds:.1f}s", err=True)
        return seconds

    def _ready_url(self, target: DatabaseTarget) -> str:
        """``target``'s URL, once waited for (--wait) and checked for a Prisma database."""
        if target.url not in self._ready:
            if self.wait_seconds > 0:
                self.wait_for(target, self.wait_seconds)
            if self.command not in PRISMA_SAFE_COMMANDS:
                with connect(target.url, autocommit=True) as conn:
                    refuse_unadopted_prisma(conn)
            self._ready.add(target.url)
        return target.url


def _start_embedded() -> DatabaseTarget:
    return DatabaseTarget(embedded.start(), "embedded")


def _announce(target: DatabaseTarget) -> None:
    if target.source == "DIRECT_URL":
        click.echo(f"using DIRECT_URL ({target.display})", err=True)
    elif target.source == "embedded":
        click.echo(
            f"using the embedded local PostgreSQL in {embedded.data_dir()} ({target.display}); "
            "set DATABASE_URL to use another server",
            err=True,
        )


pass_context = click.make_pass_decorator(Context)


class Seconds(click.FloatRange):
    """A finite number of seconds within the range (FloatRange alone lets NaN through)."""

    name = "number of seconds"

    def __init__(self, min: float = 0, max: float = 24 * 3600) -> None:
        super().__init__(min=min, max=max)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number of seconds.", param, ctx)
        return number


def human_size(size: int) -> str:
    """``size`` bytes as 12.3 MB, for people."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
