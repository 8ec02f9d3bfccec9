"""apply_stripe_event throughput beside a bare INSERT of the same payloads, in one run.

    .venv/bin/python bench/stripe_events.py [--subscriptions 1000] [--repeat 3]
        [--async-commit] [--before /work/wt/before]

Each round makes distinct events for N new subscriptions (a real basil
customer.subscription.created and .updated delivery per subscription, with new
ids), then, in chunks of 50 events taking turns, so that load from other
processes hits all alike:

* baseline: ``INSERT INTO bench_raw_events (payload) VALUES (...)`` of the
  payloads, one autocommit statement each, into a table with one jsonb column;
* sync: ``Subscriptions(conn).apply_stripe_event(event)`` on an autocommit
  connection (record in stripe_events + order-safe upsert into subscriptions,
  in ``atomic()``: BEGIN, the statement, COMMIT);
* async: ``await AsyncSubscriptions(aconn).apply_stripe_event(event)``, the same
  on an AsyncConnection.

Prints events/s of each, and the ratios to the baseline (target >= 0.5x).
``--before DIR`` also runs, in each round, the bench/stripe_events.py of an
older checkout (DIR with its own .venv) and reads its figures, so that the code
before and after a change are compared in one run, each against its own
baseline. Every side waits for one WAL flush per event; --async-commit leaves
it out, which shows the cost of the work itself (the ratios are lower then).
It works in a scratch database on $BENCH_SERVER_URL (default the local server).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import ROOT, scratch_database
from psycopg.types.json import Jsonb

from trampolin import queries
from trampolin.db import async_connect, connect
from trampolin.migrations import Migrator
from trampolin.subscriptions import AsyncSubscriptions, Subscriptions

BENCH = queries.load_file(Path(__file__).resolve().parent / "stripe_events.sql")
DATA = ROOT / "tests" / "data" / "stripe"
TARGET = 0.5
CHUNK = 50
# What an older bench/stripe_events.py prints for each round.
_BEFORE_ROUND = re.compile(
    r"round 1: apply_stripe_event\s+(?P<apply>\d+) events/s\s+bare INSERT\s+(?P<base>\d+) events/s"
)


def make_events(count: int, tag: str) -> Events:
    """Two distinct events (created, then updated 60 s later) per subscription."""
    created = json.loads((DATA / "basil_2025-06-30_customer.subscription.created.json").read_text())
    updated = json.loads((DATA / "basil_2025-08-27_customer.subscription.updated.json").read_text())
    events = []
    for n in range(1, count + 1):
        for step, template in enumerate((created, updated)):
            event = copy.deepcopy(template)
            event["id"] = f"evt_{tag}_{n}_{step}"
            event["created"] = 1_760_000_000 + n + 60 * step
            sub = event["data"]["object"]
            sub["id"] = f"sub_{tag}_{n}"
            sub["customer"] = f"cus_bench_{n}"
            events.append(event)
    return events


Events = list[dict[str, Any]]


def timed_chunks(
    sides: dict[str, Callable[[Events], None]], events: dict[str, Events]
) -> dict[str, float]:
    """events/s of each side over its own events, the sides taking turns chunk by chunk."""
    spent = dict.fromkeys(sides, 0.0)
    total = len(next(iter(events.values())))
    for at in range(0, total, CHUNK):
        for name, run in sides.items():
            chunk = events[name][at : at + CHUNK]
            start = time.perf_counter()
            run(chunk)
            spent[name] += time.perf_counter() - start
    return {name: total / seconds for name, seconds in spent.items()}


def before_round(before: Path, args: argparse.Namespace) -> dict[str, float]:
    """One round of the older checkout's own bench, in its own venv and scratch database."""
    command = [
        str(before / ".venv" / "bin" / "python"),
        str(before / "bench" / "stripe_events.py"),
        f"--subscriptions={args.subscriptions}",
        "--repeat=1",
        *(["--async-commit"] if args.async_commit else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=before)
    found = _BEFORE_ROUND.search(done.stdout)
    if found is None:
        raise SystemExit(f"no round figures in the output of {before}:\n{done.stdout}")
    return {"before": float(found["apply"]), "before baseline": float(found["base"])}


def ratios(rates: dict[str, list[float]], name: str, base: str) -> list[float]:
    """Each round's rate of ``name`` over that round's rate of ``base``."""
    return [a / b for a, b in zip(rates[name], rates[base], strict=True)]


def report(rates: dict[str, list[float]], name: str, base: str) -> str:
    each = ratios(rates, name, base)
    return (
        f"{name:<8} {statistics.median(rates[name]):6.0f} events/s, "
        f"{statistics.median(each):.2f}x {base} (rounds {min(each):.2f}-{max(each):.2f})"
    )


def measure(url: str, args: argparse.Namespace) -> Iterator[dict[str, float]]:
    """events/s of the baseline and of both twins, one dict per round."""
    loop = asyncio.new_event_loop()
    with connect(url, autocommit=True) as conn:
        aconn = loop.run_until_complete(async_connect(url, autocommit=True))
        if args.async_commit:
            BENCH.async_commit.exec(conn)
            loop.run_until_complete(BENCH.async_commit.exec(aconn))
        BENCH.create_users.exec(conn, count=args.subscriptions)
        BENCH.create_raw_table.exec(conn)
        subs, asubs = Subscriptions(conn), AsyncSubscriptions(aconn)
        outcomes: set[str] = set()

        def insert_raw(chunk: Events) -> None:
            for event in chunk:
                BENCH.insert_raw.exec(conn, payload=Jsonb(event))

        def apply_sync(chunk: Events) -> None:
            for event in chunk:
                outcomes.add(subs.apply_stripe_event(event))

        async def apply_async(chunk: Events) -> None:
            for event in chunk:
                outcomes.add(await asubs.apply_stripe_event(event))

        sides: dict[str, Callable[[Events], None]] = {
            "baseline": insert_raw,
            "sync": apply_sync,
            "async": lambda chunk: loop.run_until_complete(apply_async(chunk)),
        }
        try:
            for round_ in range(1, args.repeat + 1):
                events = {
                    name: make_events(args.subscriptions, f"r{round_}{name}") for name in sides
                }
                yield timed_chunks(sides, events)
                assert outcomes == {"applied"}, outcomes
        finally:
            loop.run_until_complete(aconn.close())
            loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="SET synchronous_commit = off: leave out the WAL flush every side waits for",
    )
    parser.add_argument("--before", type=Path, help="an older checkout to compare, with its .venv")
    args = parser.parse_args()

    rates: dict[str, list[float]] = {}
    with scratch_database("bench_stripe") as url:
        Migrator(url).apply()
        print(
            f"{args.subscriptions} subscriptions, 2 events each, {args.repeat} rounds"
            + (", synchronous_commit off" if args.async_commit else "")
        )
        for round_, figures in enumerate(measure(url, args), start=1):
            if args.before:
                figures |= before_round(args.before, args)
            for name, rate in figures.items():
                rates.setdefault(name, []).append(rate)
            shown = "   ".join(f"{name} {rate:.0f}" for name, rate in figures.items())
            print(f"round {round_}: {shown} events/s")

    print(report(rates, "sync", "baseline"))
    print(report(rates, "async", "baseline"))
    if args.before:
        print(report(rates, "before", "before baseline"))
        change = statistics.median(ratios(rates, "sync", "baseline")) / statistics.median(
            ratios(rates, "before", "before baseline")
        )
        print(f"after / before, each against its own baseline: {change:.2f}x")
    ratio = statistics.median(ratios(rates, "sync", "baseline"))
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"sync: {ratio:.2f}x the bare INSERT (target >= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
