"""The auth benchmarks' data: a scratch database with 100,000 users and 200,000 sessions.

Shared by bench/auth.py and bench/async_auth.py, so that both measure the same
tables and rows. COPY-loaded; the database is dropped afterwards.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from trampolin import queries
from trampolin.auth import hash_token
from trampolin.db import create_database
from trampolin.migrations import Migrator
from trampolin.seed import run_seed

USERS = 100_000
SESSIONS = 200_000

bench_sql = queries.load_file(Path(__file__).with_name("auth.sql"))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated, seeded scratch database on $BENCH_SERVER_URL, dropped afterwards."""
    base = os.environ.get("BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
    base += "/postgres"
    name = f"trampolin_bench_auth_{os.getpid()}"
    admin_url = make_conninfo(base, dbname="postgres")
    url = make_conninfo(base, dbname=name)
    create_database(admin_url, name)
    try:
        Migrator(url).apply()
        run_seed(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            queries.load("admin").drop_database.exec(admin, identifiers={"database": name})


def load(conn: psycopg.Connection[Any]) -> tuple[list[uuid.UUID], list[str]]:
    """COPY the users and sessions in; the user ids and the raw session tokens."""
    started = time.perf_counter()
    user_ids = [uuid.uuid4() for _ in range(USERS)]
    tokens = [f"bench-session-{i}-{uuid.uuid4().hex}" for i in range(SESSIONS)]
    expires = datetime.now(UTC) + timedelta(days=30)
    with conn.transaction():
        with bench_sql.copy_users.copy(conn) as copy:
            for i, user_id in enumerate(user_ids):
                copy.write_row((user_id, f"user{i}@bench.example", f"User {i}"))
        with bench_sql.copy_sessions.copy(conn) as copy:
            for i, token in enumerate(tokens):
                copy.write_row((hash_token(token), user_ids[i % USERS], expires))
    bench_sql.analyze.exec(conn)
    elapsed = time.perf_counter() - started
    print(f"loaded {USERS:,} users and {SESSIONS:,} sessions with COPY in {elapsed:.1f}s")
    return user_ids, tokens
