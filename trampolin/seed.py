"""Run sql/seed.sql, the idempotent seed data (the default roles)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from trampolin.db import connect
from trampolin.errors import TrampolinError
from trampolin.queries import sql_root


def seed_path() -> Path:
    return sql_root() / "seed.sql"


def run_seed(url: str, path: Path | None = None) -> int:
    """Run the seed file in one transaction; returns the number of rows it changed."""
    path = path or seed_path()
    script = path.read_bytes()
    changed = 0
    with connect(url) as conn:
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(script)
                while True:
                    changed += max(cur.rowcount, 0)
                    if not cur.nextset():
                        break
        except psycopg.Error as exc:
            message = (exc.diag.message_primary or str(exc)).strip()
            if exc.sqlstate == "42P01":  # undefined table
                message += " (is the database migrated? run `trampolin migrate` first)"
            raise TrampolinError(f"{path}: {message}; nothing was seeded") from None
    return changed
