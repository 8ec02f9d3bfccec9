"""What every command shares: the database target, resolved on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from trampolin.config import DatabaseTarget


class Context:
    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self._target: DatabaseTarget | None = None

    def target(self) -> DatabaseTarget:
        """The database to use; says so on stderr when it is the embedded server."""
        if self._target is None:
            from trampolin.config import resolve

            self._target = resolve(self.database_url)
            if self._target.source == "embedded":
                click.echo(
                    f"using the embedded local PostgreSQL ({self._target.display}); "
                    "set DATABASE_URL to use another server",
                    err=True,
                )
        return self._target

    @property
    def url(self) -> str:
        return self.target().url


pass_context = click.make_pass_decorator(Context)
