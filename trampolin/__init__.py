"""trampolin: the PostgreSQL data layer of the Trampolin web application.

The repositories live in their modules (``trampolin.auth``,
``trampolin.subscriptions``, ``trampolin.csv_uploads``); ``trampolin.pool()``
and ``trampolin.async_pool()`` give a service its connection pool
(trampolin.db has the options). Pooled connections are in autocommit mode:
each repository call is atomic on its own, and ``conn.transaction()`` makes
several calls one unit of work::

    pool = trampolin.pool()          # DATABASE_URL; one per process
    with pool.connection() as conn:  # autocommit
        user = AuthAdapter(conn).get_user(user_id)
    with pool.connection() as conn, conn.transaction():  # all or nothing
        ...
    pool.close()                     # at shutdown
"""

from __future__ import annotations

from trampolin.db import async_pool, pool

__all__ = ["__version__", "async_pool", "pool"]

__version__ = "0.1.0"
