"""Async session lookups: AsyncAuthAdapter beside hand-written psycopg and asyncpg, and pools.

Same tables and rows as bench/auth.py (bench/auth_data.py: 100,000 users,
200,000 sessions). In one run, on asyncio's own loop and again on uvloop:

1. ``AsyncAuthAdapter.get_session_and_user`` calls/s on one connection beside
   the same JOIN as a hand-written prepared psycopg async query (target
   >= 0.85x) and beside asyncpg's prepared ``fetchrow`` (target >= 0.8x),
   in alternating batches so that noise hits all three alike;
2. 64 concurrent tasks through ``trampolin.async_pool`` of 8 connections
   beside 8 threads through ``trampolin.pool`` of 8, lookups/s.

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
from trampolin.db import async_connect, async_pool, pool

ROUNDS = 5
LOOKUPS_PER_ROUND = 4_000
BATCH = 100
POOL_SIZE = 8
TASKS = 64
POOLED_LOOKUPS = 16_000
TARGET_PSYCOPG = 0.85
TARGET_ASYNCPG = 0.80

Lookup = Callable[[str], Awaitable[object]]


async def duel(contenders: Mapping[str, Lookup], tokens: Sequence[str]) -> dict[str, float]:
    """calls/s of each contender over the same tokens, taking turns batch by batch."""
    names = list(contenders)
    spent = dict.fromkeys(names, 0.0)
    for number, start in enumerate(range(0, len(tokens), BATCH)):
        batch = tokens[start : start + BATCH]
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            lookup = contenders[name]
            started = time.perf_counter()
            for token in batch:
                await lookup(token)
            spent[name] += time.perf_counter() - started
    return {name: len(tokens) / seconds for name, seconds in spent.items()}


async def one_connection(url: str, tokens: list[str]) -> dict[str, list[float]]:
    """Rounds of the three single-connection contenders on the running loop."""
    lookup_sql = bench_sql.baseline_session_and_user.sql
    asyncpg_sql = bench_sql.baseline_session_and_user_asyncpg.sql
    rng = random.Random(42)
    aconn = await async_connect(url, autocommit=True)
    params = conninfo_to_dict(url)
    apg = await asyncpg.connect(
        host=params.get("host"),
        port=params.get("port"),
        user=params.get("user"),
        password=params.get("password"),
        database=params.get("dbname"),
    )
    try:
        auth = AsyncAuthAdapter(aconn)
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

        contenders = {"adapter": adapter, "psycopg": psycopg_by_hand, "asyncpg": asyncpg_by_hand}
        rounds: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(ROUNDS):
            figures = await duel(contenders, rng.sample(tokens, LOOKUPS_PER_ROUND))
            for name, value in figures.items():
                rounds[name].append(value)
        return rounds
    finally:
        await aconn.close()
        await apg.close()


async def async_pool_rate(url: str, tokens: list[str]) -> float:
    """Lookups/s of TASKS tasks sharing an async_pool of POOL_SIZE connections."""
    tasks_pool = async_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE)
    async with tasks_pool:
        await tasks_pool.wait()
        shares = [tokens[i::TASKS] for i in range(TASKS)]

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


def ratio_line(label: str, ours: list[float], base: list[float], target: float) -> bool:
    a, b = statistics.median(ours), statistics.median(base)
    met = a / b >= target
    print(
        f"  {label:<34} {a:>7,.0f} vs {b:>7,.0f} calls/s  ratio {a / b:.2f}x "
        f"(target >= {target:.2f}x: {'met' if met else 'MISSED'})"
    )
    return met


def measure(loop_name: str, run: Callable[[Any], Any], url: str, tokens: list[str]) -> bool:
    print(f"{loop_name} loop, medians of {ROUNDS} rounds of {LOOKUPS_PER_ROUND:,} lookups:")
    rounds = run(one_connection(url, tokens))
    met = ratio_line("adapter / hand-written psycopg", rounds["adapter"], rounds["psycopg"],
                     TARGET_PSYCOPG)  # fmt: skip
    met &= ratio_line("adapter / asyncpg prepared", rounds["adapter"], rounds["asyncpg"],
                      TARGET_ASYNCPG)  # fmt: skip
    rng = random.Random(7)
    pooled = [rng.choice(tokens) for _ in range(POOLED_LOOKUPS)]
    tasks = [run(async_pool_rate(url, pooled)) for _ in range(3)]
    threads = [thread_pool_rate(url, pooled) for _ in range(3)]
    print(
        f"  {TASKS} tasks / async_pool({POOL_SIZE})        {statistics.median(tasks):>7,.0f} "
        f"lookups/s;  {POOL_SIZE} threads / pool({POOL_SIZE}) "
        f"{statistics.median(threads):>7,.0f} lookups/s  "
        f"ratio {statistics.median(tasks) / statistics.median(threads):.2f}x"
    )
    return met


def main() -> int:
    with scratch_database() as url, psycopg.connect(url, autocommit=True) as conn:
        _, tokens = load(conn)
        met = measure("asyncio", asyncio.run, url, tokens)
        met &= measure("uvloop", uvloop.run, url, tokens)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
