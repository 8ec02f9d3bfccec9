"""trampolin: the PostgreSQL data layer of the Trampolin web application.

Import the repositories from their modules (``trampolin.auth``,
``trampolin.subscriptions``, ``trampolin.csv_uploads``); this package imports
nothing heavy, so that the CLI starts fast. ``trampolin.pool()`` gives a
service its connection pool::

    pool = trampolin.pool()          # DATABASE_URL; one per process
    with pool.connection() as conn:  # one transaction, committed at the end
        user = AuthAdapter(conn).get_user(user_id)
    pool.close()                     # at shutdown
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__version__ = "0.1.0"


def pool(url: str | None = None, **options: Any) -> ConnectionPool[psycopg.Connection[Any]]:
    """A configured psycopg_pool.ConnectionPool; see trampolin.db.pool for the options."""
    from trampolin.db import pool as make_pool

    return make_pool(url, **options)
