"""Auth adapter throughput: get_session_and_user against a hand-written prepared query.

With 100,000 users and 200,000 sessions (COPY-loaded into a scratch database
that is dropped afterwards), measures calls/s of AuthAdapter.get_session_and_user
beside the same lookup as one prepared psycopg query on the same connection,
alternating rounds and reporting medians (target: >= 0.85x). Also
create_session and use_verification_token, each beside a plain prepared
INSERT / DELETE ... RETURNING.

    .venv/bin/python bench/auth.py          # DATABASE_URL names the server to use
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from trampolin.auth import AuthAdapter, hash_token
from trampolin.db import create_database
from trampolin.migrations import Migrator
from trampolin.queries import load_queries, load_query_file
from trampolin.seed import run_seed

USERS = 100_000
SESSIONS = 200_000
ROUNDS = 7
LOOKUPS_PER_ROUND = 4_000
BATCH = 200
WRITES_PER_ROUND = 1_500
TARGET = 0.85

bench_sql = load_query_file(Path(__file__).with_suffix(".sql"))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated, seeded scratch database on the DATABASE_URL server, dropped afterwards."""
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
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
            load_queries("admin").drop_database.exec(admin, identifiers={"database": name})


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


def rate(calls: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return calls / (time.perf_counter() - started)


def compare(label: str, ours: list[float], base: list[float], target: float | None) -> None:
    a, b = statistics.median(ours), statistics.median(base)
    verdict = ""
    if target is not None:
        verdict = f" (target >= {target:.2f}x: {'met' if a / b >= target else 'MISSED'})"
    print(
        f"{label:<24} {a:>7,.0f} calls/s  baseline {b:>7,.0f} calls/s  ratio {a / b:.2f}x{verdict}"
    )


def main() -> int:
    with scratch_database() as url, psycopg.connect(url, autocommit=True) as conn:
        user_ids, tokens = load(conn)
        auth = AuthAdapter(conn)
        rng = random.Random(42)
        expires = datetime.now(UTC) + timedelta(days=30)

        # get_session_and_user: same connection, same tokens. Each round interleaves
        # small batches of both, so that load from other processes hits both alike.
        lookup_sql = bench_sql.baseline_session_and_user.sql
        ours: list[float] = []
        base: list[float] = []
        for _ in range(ROUNDS):
            sample = rng.sample(tokens, LOOKUPS_PER_ROUND)
            spent = {"ours": 0.0, "base": 0.0}
            for start in range(0, LOOKUPS_PER_ROUND, BATCH):
                batch = sample[start : start + BATCH]
                started = time.perf_counter()
                for token in batch:
                    assert auth.get_session_and_user(token) is not None
                middle = time.perf_counter()
                for token in batch:
                    cur = conn.execute(lookup_sql, {"token_hash": hash_token(token)}, prepare=True)
                    assert cur.fetchone() is not None
                spent["ours"] += middle - started
                spent["base"] += time.perf_counter() - middle
            ours.append(LOOKUPS_PER_ROUND / spent["ours"])
            base.append(LOOKUPS_PER_ROUND / spent["base"])

        # create_session and use_verification_token, each beside a plain prepared statement.
        create_ours: list[float] = []
        create_base: list[float] = []
        use_ours: list[float] = []
        use_base: list[float] = []
        insert_sql = bench_sql.baseline_create_session.sql
        delete_sql = bench_sql.baseline_use_verification_token.sql
        for round_ in range(ROUNDS):
            new = [
                (f"new-{round_}-{i}-{uuid.uuid4().hex}", rng.choice(user_ids))
                for i in range(2 * WRITES_PER_ROUND)
            ]
            mine, theirs = new[:WRITES_PER_ROUND], new[WRITES_PER_ROUND:]

            def create_with_adapter(rows: list[tuple[str, uuid.UUID]] = mine) -> None:
                for token, user_id in rows:
                    auth.create_session(session_token=token, user_id=user_id, expires=expires)

            def create_by_hand(rows: list[tuple[str, uuid.UUID]] = theirs) -> None:
                for token, user_id in rows:
                    params = {
                        "token_hash": hash_token(token),
                        "user_id": user_id,
                        "expires": expires,
                    }
                    conn.execute(insert_sql, params, prepare=True).fetchone()

            vts = [
                (f"user{i}@bench.example", f"vt-{round_}-{i}-{uuid.uuid4().hex}")
                for i in range(2 * WRITES_PER_ROUND)
            ]
            with bench_sql.copy_verification_tokens.copy(conn) as copy:
                for identifier, token in vts:
                    copy.write_row((identifier, hash_token(token), expires))
            vt_mine, vt_theirs = vts[:WRITES_PER_ROUND], vts[WRITES_PER_ROUND:]

            def use_with_adapter(rows: list[tuple[str, str]] = vt_mine) -> None:
                for identifier, token in rows:
                    assert auth.use_verification_token(identifier, token) is not None

            def use_by_hand(rows: list[tuple[str, str]] = vt_theirs) -> None:
                for identifier, token in rows:
                    params = {"identifier": identifier, "token_hash": hash_token(token)}
                    assert conn.execute(delete_sql, params, prepare=True).fetchone() is not None

            steps = [
                (create_ours, create_with_adapter),
                (create_base, create_by_hand),
                (use_ours, use_with_adapter),
                (use_base, use_by_hand),
            ]
            for results, run in steps if round_ % 2 == 0 else steps[1::-1] + steps[:1:-1]:
                results.append(rate(WRITES_PER_ROUND, run))

        print(f"medians of {ROUNDS} rounds, one autocommit connection, {sys.platform}")
        compare("get_session_and_user", ours, base, TARGET)
        compare("create_session", create_ours, create_base, None)
        compare("use_verification_token", use_ours, use_base, None)
        ratio = statistics.median(ours) / statistics.median(base)
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
