"""What every command shares: the database target, resolved on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from trampolin.config import DatabaseTarget


class Context:
    def __init__(self, database_url: str | None, direct_url: str | None = None) -> None:
        self.database_url = database_url
        self.direct_url_option = direct_url
        self._target: DatabaseTarget | None = None
        self._direct: DatabaseTarget | None = None

    def target(self) -> DatabaseTarget:
        """The database to use; says so on stderr when it is the embedded server."""
        if self._target is None:
            from trampolin.config import resolve

            self._target = resolve(self.database_url)
            _announce(self._target)
        return self._target

    def direct_target(self, purpose: str) -> DatabaseTarget:
        """The direct database (DIRECT_URL first); never a transaction-mode pooler."""
        if self._direct is None:
            from trampolin.config import resolve_direct

            self._direct = resolve_direct(
                self.direct_url_option, self.database_url, purpose=purpose
            )
            _announce(self._direct)
        return self._direct

    @property
    def url(self) -> str:
        """The service database URL (DATABASE_URL); may be a pooler."""
        return self.target().url

    def direct_url(self, purpose: str = "this command") -> str:
        """The URL for session-level work: migrate, seed, dump, restore, verify."""
        return self.direct_target(purpose).url


def _announce(target: DatabaseTarget) -> None:
    if target.source == "DIRECT_URL":
        click.echo(f"using DIRECT_URL ({target.display})", err=True)
    elif target.source == "embedded":
        click.echo(
            f"using the embedded local PostgreSQL ({target.display}); "
            "set DATABASE_URL to use another server",
            err=True,
        )


pass_context = click.make_pass_decorator(Context)


def human_size(size: int) -> str:
    """``size`` bytes as 12.3 MB, for people."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
