"""Async session lookups: AsyncAuthAdapter beside hand-written psycopg and asyncpg, and pools.

Same tables and rows as bench/auth.py (bench/auth_data.py: 100,000 users,
200,000 sessions). In one run, on asyncio's own loop and again on uvloop:

1. ``AsyncAuthAdapter.get_session_and_user`` calls/s on one connection beside
   the same JOIN as a hand-written prepared psycopg async query (target
   >= 0.85x) and beside asyncpg's prepared ``fetchrow`` (target >= 0.8x),
   in alternating batches so that noise hits all alike; the sync
   ``AuthAdapter`` on a psycopg Connection takes its turns too, for reference.
   Each also shows the client's CPU time per call (process time over its own
   batches), which the server's load does not blur: where the time goes;
2. 64 concurrent tasks through ``trampolin.async_pool`` of 8 connections
   beside 8 threads through ``trampolin.pool`` of 8, lookups/s; and 8 tasks
   through the same async pool, which never wait for a connection (the
   pool's cost of handing connections to waiting tasks shows between the two).

    .venv/bin/python bench/async_auth.py     # BENCH_SERVER_URL names the server to use
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import psycopg
import uvloop
from auth_data import bench_sql, load, scratch_database
from psycopg.conninfo import conninfo_to_dict

from trampolin.auth import AsyncAuthAdapter, AuthAdapter, hash_token
from trampolin.db import async_connect, async_pool, connect, pool

ROUNDS = 5
LOOKUPS_PER_ROUND = 4_000
BATCH = 100
POOL_SIZE = 8
TASKS = 64
POOLED_LOOKUPS = 16_000
TARGET_PSYCOPG = 0.85
TARGET_ASYNCPG = 0.80
ADAPTER = "AsyncAuthAdapter"
PSYCOPG = "hand-written psycopg async, prepared"
ASYNCPG = "asyncpg prepared fetchrow"
SYNC = "AuthAdapter (sync, for reference)"

Lookup = Callable[[str], Awaitable[object]]


class Figures:
    """calls/s and client CPU microseconds per call of each contender, round by round."""

    def __init__(self, names: Sequence[str]) -> None:
        self.rates: dict[str, list[float]] = {name: [] for name in names}
        self.cpu: dict[str, list[float]] = {name: [] for name in names}

    def rate(self, name: str) -> float:
        return statistics.median(self.rates[name])

    def cpu_us(self, name: str) -> float:
        return statistics.median(self.cpu[name])


async def duel(contenders: Mapping[str, Lookup], tokens: Sequence[str], figures: Figures) -> None:
    """One round: each contender over the same tokens, taking turns batch by batch."""
    names = list(contenders)
    wall = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    for number, start in enumerate(range(0, len(tokens), BATCH)):
        batch = tokens[start : start + BATCH]
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            lookup = contenders[name]
            started, cpu_started = time.perf_counter(), time.process_time()
            for token in batch:
                await lookup(token)
            wall[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - cpu_started
    for name in names:
        figures.rates[name].append(len(tokens) / wall[name])
        figures.cpu[name].append(cpu[name] / len(tokens) * 1e6)


async def one_connection(url: str, tokens: list[str]) -> Figures:
    """Rounds of the single-connection contenders on the running loop."""
    lookup_sql = bench_sql.baseline_session_and_user.sql
    asyncpg_sql = bench_sql.baseline_session_and_user_asyncpg.sql
    rng = random.Random(42)
    aconn = await async_connect(url, autocommit=True)
    conn = connect(url, autocommit=True)
    params = conninfo_to_dict(url)
    apg = await asyncpg.connect(
        host=params.get("host"),
        port=params.get("port"),
        user=params.get("user"),
        password=params.get("password"),
        database=params.get("dbname"),
    )
    try:
        auth, sync_auth = AsyncAuthAdapter(aconn), AuthAdapter(conn)
        statement = await apg.prepare(asyncpg_sql)

        async def adapter(token: str) -> object:
            found = await auth.get_session_and_user(token)
            assert found is not None
            return found

        async def psycopg_by_hand(token: str) -> object:
            cur = await aconn.execute(lookup_sql, {"token_hash": hash_token(token)}, prepare=True)
            row = await cur.fetchone()
            assert row is not None
            return row

        async def asyncpg_by_hand(token: str) -> object:
            row = await statement.fetchrow(hash_token(token))
            assert row is not None
            return row

        async def sync_adapter(token: str) -> object:  # blocks the loop: nothing else runs
            found = sync_auth.get_session_and_user(token)
            assert found is not None
            return found

        contenders = {
            ADAPTER: adapter,
            PSYCOPG: psycopg_by_hand,
            ASYNCPG: asyncpg_by_hand,
            SYNC: sync_adapter,
        }
        figures = Figures(list(contenders))
        for _ in range(ROUNDS):
            await duel(contenders, rng.sample(tokens, LOOKUPS_PER_ROUND), figures)
        return figures
    finally:
        await aconn.close()
        conn.close()
        await apg.close()


async def async_pool_rate(url: str, tokens: list[str], tasks: int) -> float:
    """Lookups/s of ``tasks`` tasks sharing an async_pool of POOL_SIZE connections."""
    tasks_pool = async_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE)
    async with tasks_pool:
        await tasks_pool.wait()
        shares = [tokens[i::tasks] for i in range(tasks)]

        async def work(share: list[str]) -> None:
            for token in share:
                async with tasks_pool.connection() as conn:
                    assert await AsyncAuthAdapter(conn).get_session_and_user(token) is not None

        started = time.perf_counter()
        await asyncio.gather(*(work(share) for share in shares))
        return len(tokens) / (time.perf_counter() - started)


def thread_pool_rate(url: str, tokens: list[str]) -> float:
    """Lookups/s of POOL_SIZE threads sharing a pool() of POOL_SIZE connections."""
    with pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE) as threads_pool:
        threads_pool.wait()
        shares = [tokens[i::POOL_SIZE] for i in range(POOL_SIZE)]
        barrier = threading.Barrier(POOL_SIZE)

        def work(share: list[str]) -> None:
            barrier.wait()
            for token in share:
                with threads_pool.connection() as conn:
                    assert AuthAdapter(conn).get_session_and_user(token) is not None

        started = time.perf_counter()
        with ThreadPoolExecutor(POOL_SIZE) as executor:
            list(executor.map(work, shares))
        return len(tokens) / (time.perf_counter() - started)


def ratio_line(label: str, ours: float, base: float, target: float | None = None) -> bool:
    met = target is None or ours / base >= target
    verdict = "" if target is None else f" (target >= {target:.2f}x: {'met' if met else 'MISSED'})"
    print(f"  {label:<40} ratio {ours / base:.2f}x{verdict}")
    return met


def measure(loop_name: str, run: Callable[[Any], Any], url: str, tokens: list[str]) -> bool:
    print(f"{loop_name} loop, medians of {ROUNDS} rounds of {LOOKUPS_PER_ROUND:,} lookups:")
    figures: Figures = run(one_connection(url, tokens))
    for name in figures.rates:
        print(
            f"  {name:<40} {figures.rate(name):>7,.0f} calls/s  "
            f"client CPU {figures.cpu_us(name):>5.0f} us/call"
        )
    adapter, psycopg_rate, asyncpg_rate = (figures.rate(n) for n in (ADAPTER, PSYCOPG, ASYNCPG))
    met = ratio_line("adapter / hand-written psycopg", adapter, psycopg_rate, TARGET_PSYCOPG)
    met &= ratio_line("adapter / asyncpg prepared", adapter, asyncpg_rate, TARGET_ASYNCPG)
    ratio_line("hand-written psycopg / asyncpg (drivers)", psycopg_rate, asyncpg_rate)
    cpu_psycopg, cpu_asyncpg = figures.cpu_us(PSYCOPG), figures.cpu_us(ASYNCPG)
    ratio_line("client CPU per call: psycopg / asyncpg", cpu_psycopg, cpu_asyncpg)
    rng = random.Random(7)
    pooled = [rng.choice(tokens) for _ in range(POOLED_LOOKUPS)]
    crowd, few, threads = [], [], []
    for _ in range(3):  # interleaved, so that the machine's load hits all three alike
        crowd.append(run(async_pool_rate(url, pooled, TASKS)))
        few.append(run(async_pool_rate(url, pooled, POOL_SIZE)))
        threads.append(thread_pool_rate(url, pooled))
    labels = (
        (f"{TASKS} tasks / async_pool({POOL_SIZE})", crowd),
        (f"{POOL_SIZE} tasks / async_pool({POOL_SIZE})", few),
        (f"{POOL_SIZE} threads / pool({POOL_SIZE})", threads),
    )
    for label, rates in labels:
        print(f"  {label:<40} {statistics.median(rates):>7,.0f} lookups/s")
    base = statistics.median(threads)
    ratio_line(f"{TASKS} tasks / {POOL_SIZE} threads", statistics.median(crowd), base)
    ratio_line(f"{POOL_SIZE} tasks / {POOL_SIZE} threads", statistics.median(few), base)
    return met


def main() -> int:
    with scratch_database() as url, psycopg.connect(url, autocommit=True) as conn:
        _, tokens = load(conn)
        met = measure("asyncio", asyncio.run, url, tokens)
        met &= measure("uvloop", uvloop.run, url, tokens)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
