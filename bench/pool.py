"""8 threads calling get_session_and_user: through trampolin.pool(), directly and via PgBouncer,
beside the same threads each holding its own plain connection, in the same run (issue 7).

Usage: python bench/pool.py [--threads 8] [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from common import scratch_database

SESSIONS = 2_000


def setup(url: str) -> list[str]:
    """Migrate, then create users with one live session each; returns the session tokens."""
    from trampolin.auth import AuthAdapter
    from trampolin.db import connect
    from trampolin.migrations import Migrator

    Migrator(url).apply()
    tokens = [f"bench-session-{n:06d}" for n in range(SESSIONS)]
    expires = datetime.now(UTC) + timedelta(days=1)
    with connect(url) as conn, conn.transaction():
        auth = AuthAdapter(conn)
        for n, token in enumerate(tokens):
            user = auth.create_user(email=f"pool{n}@example.com")
            auth.create_session(session_token=token, user_id=user.id, expires=expires)
    return tokens


def run_threads(threads: int, seconds: float, worker: Callable[[threading.Event], int]) -> float:
    """Calls per second of ``threads`` workers running until a shared deadline."""
    stop = threading.Event()
    counts: list[int] = []
    lock = threading.Lock()

    def body() -> None:
        done = worker(stop)
        with lock:
            counts.append(done)

    pool_threads = [threading.Thread(target=body) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool_threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in pool_threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def plain_worker(url: str, tokens: list[str]) -> Callable[[threading.Event], int]:
    from trampolin.auth import AuthAdapter
    from trampolin.db import connect

    def work(stop: threading.Event) -> int:
        rng = random.Random()
        done = 0
        with connect(url, autocommit=True) as conn:
            auth = AuthAdapter(conn)
            while not stop.is_set():
                assert auth.get_session_and_user(rng.choice(tokens)) is not None
                done += 1
        return done

    return work


def pooled_worker(pool: Any, tokens: list[str]) -> Callable[[threading.Event], int]:
    from trampolin.auth import AuthAdapter

    def work(stop: threading.Event) -> int:
        rng = random.Random()
        done = 0
        while not stop.is_set():
            with pool.connection() as conn:
                assert AuthAdapter(conn).get_session_and_user(rng.choice(tokens)) is not None
            done += 1
        return done

    return work


def main() -> None:
    import trampolin
    from tests.support import find_test_server, start_pgbouncer
    from trampolin.config import parse_url

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with scratch_database("bench_pool") as url:
        tokens = setup(url)
        dbname = parse_url(url)[0].rsplit("/", 1)[1]
        bouncer = start_pgbouncer(find_test_server(__import__("common").ROOT))
        results: dict[str, list[float]] = {"plain": [], "pool direct": [], "pool via pgbouncer": []}
        size = {"min_size": args.threads, "max_size": args.threads}
        with trampolin.pool(url, **size) as direct:
            direct.wait()
            bounced = trampolin.pool(bouncer.url(dbname), **size) if bouncer is not None else None
            try:
                if bounced is not None:
                    bounced.wait()
                for _ in range(args.repeat):  # interleaved, so noise hits all alike
                    results["plain"].append(
                        run_threads(args.threads, args.seconds, plain_worker(url, tokens))
                    )
                    results["pool direct"].append(
                        run_threads(args.threads, args.seconds, pooled_worker(direct, tokens))
                    )
                    if bounced is not None:
                        results["pool via pgbouncer"].append(
                            run_threads(args.threads, args.seconds, pooled_worker(bounced, tokens))
                        )
            finally:
                if bounced is not None:
                    bounced.close()
                if bouncer is not None:
                    bouncer.stop()
    base = statistics.median(results["plain"])
    print(
        f"get_session_and_user, {args.threads} threads, {args.seconds:.0f} s x {args.repeat} "
        f"(median calls/s)"
    )
    for name, samples in results.items():
        if not samples:
            print(f"  {name:<22} skipped (pgbouncer is not installed)")
            continue
        rate = statistics.median(samples)
        print(f"  {name:<22} {rate:9.0f} calls/s  {rate / base:5.2f}x plain connections")


if __name__ == "__main__":
    main()
