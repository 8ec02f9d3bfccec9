"""Usage.consume throughput beside a bare single-row increment, and a hot row vs spread rows.

    .venv/bin/python bench/usage.py [--calls 2000] [--repeat 5] [--async-commit]

In a scratch database (created on $BENCH_SERVER_URL, default
postgresql://postgres@127.0.0.1:5432, migrated, dropped), with subscribers
whose plan allows more than the run uses:

* one connection, chunks of 100 calls taking turns: ``Usage(conn).consume(user,
  reason=...)`` (the window, the limit check, the counter and the ledger row, in
  one statement inside db.atomic: BEGIN, the statement, COMMIT), the same
  statement alone (autocommit: what db.atomic's two round trips cost), and
  ``UPDATE usage_periods SET used = used + 1`` of one row, one autocommit
  statement (target: consume >= 0.8x the bare UPDATE);
* 8 threads, each on its own connection, consuming for one user (every charge
  waits for the row lock of the one before) and for 8 users (one each).

Both sides wait for one WAL flush per call; --async-commit leaves it out, which
shows the cost of the statements and round trips themselves.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import scratch_database  # puts the checkout on sys.path

from trampolin import queries
from trampolin.db import connect
from trampolin.migrations import Migrator
from trampolin.seed import run_seed
from trampolin.usage import Usage

BENCH = queries.load_file(Path(__file__).with_suffix(".sql"))
USAGE_SQL = queries.load("usage")
TARGET = 0.8
CHUNK = 100
THREADS = 8


@contextmanager
def database() -> Iterator[str]:
    with scratch_database("bench_usage") as url:
        Migrator(url).apply()
        run_seed(url)
        yield url


def one_connection(url: str, calls: int, async_commit: bool) -> tuple[float, float, float]:
    """calls/s of consume, of its statement alone, and of the bare increment, on one
    connection, in alternating chunks."""
    with connect(url, autocommit=True) as conn:
        if async_commit:
            BENCH.async_commit.exec(conn)
        ours, theirs = (
            r["user_id"] for r in BENCH.create_subscribers.many(conn, tag=uuid.uuid4().hex, count=2)
        )
        usage = Usage(conn)
        period = usage.charge(theirs, reason="bench: open the period").period_start
        for _ in range(20):  # past psycopg's prepare threshold and the server's custom plans
            usage.consume(ours, reason="bench: warm up")
            BENCH.bare_increment.exec(conn, user_id=theirs, period_start=period)
        statement = {"user_id": ours, "n": 1, "reason": "bench", "search_id": None}
        spent = [0.0, 0.0, 0.0]
        for _ in range(calls // CHUNK):
            start = time.perf_counter()
            for _ in range(CHUNK):
                usage.consume(ours, reason="bench")
            spent[0] += time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(CHUNK):
                USAGE_SQL.consume.one(conn, **statement)
            spent[1] += time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(CHUNK):
                BENCH.bare_increment.exec(conn, user_id=theirs, period_start=period)
            spent[2] += time.perf_counter() - start
    done = calls // CHUNK * CHUNK
    return done / spent[0], done / spent[1], done / spent[2]


def threaded(url: str, users: list[Any], calls: int, async_commit: bool) -> float:
    """Total consume calls/s of THREADS threads, thread i charging users[i % len(users)]."""
    barrier = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with connect(url, autocommit=True) as conn:
                if async_commit:
                    BENCH.async_commit.exec(conn)
                usage = Usage(conn)
                for _ in range(20):
                    usage.consume(users[i % len(users)], reason="bench: warm up")
                barrier.wait()
                for _ in range(calls):
                    usage.consume(users[i % len(users)], reason="bench")
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return THREADS * calls / elapsed


def report(label: str, values: list[float], base: list[float], target: float | None) -> None:
    ratio = statistics.median(values) / statistics.median(base)
    ratios = [a / b for a, b in zip(values, base, strict=True)]
    spread = min(ratios), max(ratios)
    verdict = (
        ""
        if target is None
        else f"  (target >= {target}x: {'met' if ratio >= target else 'MISSED'})"
    )
    print(
        f"{label}: {statistics.median(values):8.0f} vs {statistics.median(base):8.0f} calls/s, "
        f"ratio {ratio:.2f}x (rounds {spread[0]:.2f}..{spread[1]:.2f}){verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per side and round")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--async-commit", action="store_true", help="SET synchronous_commit = off")
    args = parser.parse_args()
    rounds: dict[str, list[float]] = {
        "consume": [],
        "statement": [],
        "bare": [],
        "hot": [],
        "spread": [],
    }
    with database() as url:
        with connect(url, autocommit=True) as conn:
            Usage(conn).set_plan_limit("price_bench", 2**31 - 1)
        print(
            f"{args.calls} calls per side, {args.repeat} rounds"
            + (", synchronous_commit off" if args.async_commit else "")
        )
        for round_ in range(1, args.repeat + 1):
            consume, statement, bare = one_connection(url, args.calls, args.async_commit)
            with connect(url, autocommit=True) as conn:
                users = [
                    r["user_id"]
                    for r in BENCH.create_subscribers.many(conn, tag=f"t{round_}", count=THREADS)
                ]
            per_thread = max(1, args.calls // THREADS)
            hot = threaded(url, users[:1], per_thread, args.async_commit)
            spread = threaded(url, users, per_thread, args.async_commit)
            measured = {
                "consume": consume,
                "statement": statement,
                "bare": bare,
                "hot": hot,
                "spread": spread,
            }
            for key, value in measured.items():
                rounds[key].append(value)
            print(
                f"round {round_}: consume {consume:6.0f}/s  statement alone {statement:6.0f}/s  "
                f"bare UPDATE {bare:6.0f}/s ({consume / bare:.2f}x, {statement / bare:.2f}x)   "
                f"8 threads: one user {hot:6.0f}/s  "
                f"8 users {spread:6.0f}/s ({hot / spread:.2f}x)"
            )
    report("one connection, consume vs bare UPDATE  ", rounds["consume"], rounds["bare"], TARGET)
    report("  its statement alone vs bare UPDATE    ", rounds["statement"], rounds["bare"], None)
    report("8 threads, one user vs 8 users         ", rounds["hot"], rounds["spread"], None)


if __name__ == "__main__":
    main()
