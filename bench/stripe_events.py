"""apply_stripe_event throughput beside a bare INSERT of the same payloads, in one run.

    .venv/bin/python bench/stripe_events.py [--subscriptions 1000] [--repeat 3] [--async-commit]

Each round makes distinct events for N new subscriptions (a real basil
customer.subscription.created and .updated delivery per subscription, with new
ids), then, on one autocommit connection, in chunks of 50 events taking turns:

* apply: ``Subscriptions(conn).apply_stripe_event(event)`` for every event
  (record in stripe_events + order-safe upsert into subscriptions, one
  transaction each);
* baseline: ``INSERT INTO bench_raw_events (payload) VALUES (...)`` of the same
  payloads, one autocommit statement each, into a table with one jsonb column.

Prints events/s of each round, the medians, and the ratio (target >= 0.5x).
Both sides wait for one WAL flush per event; --async-commit leaves it out,
which shows the cost of the work itself (the ratio is lower then).
It works in a scratch database created on $BENCH_SERVER_URL (default
postgresql://postgres@127.0.0.1:5432), migrated, and dropped.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trampolin import queries  # noqa: E402
from trampolin.db import connect  # noqa: E402
from trampolin.subscriptions import Subscriptions  # noqa: E402

BENCH = queries.load_file(Path(__file__).resolve().parent / "stripe_events.sql")
SERVER = os.environ.get("BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
DATA = ROOT / "tests" / "data" / "stripe"
TARGET = 0.5
CHUNK = 50


@contextmanager
def database() -> Iterator[str]:
    """A scratch database on $BENCH_SERVER_URL, migrated, dropped afterwards."""
    from trampolin import queries
    from trampolin.db import create_database
    from trampolin.migrations import Migrator

    name = f"bench_stripe_{uuid.uuid4().hex[:8]}"
    create_database(f"{SERVER}/postgres", name)
    try:
        url = f"{SERVER}/{name}"
        Migrator(url).apply()
        yield url
    finally:
        with connect(f"{SERVER}/postgres", autocommit=True) as conn:
            queries.load("admin").drop_database.exec(conn, identifiers={"database": name})


def make_events(count: int, tag: str) -> list[dict[str, Any]]:
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


def rate(count: int, seconds: float) -> float:
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="SET synchronous_commit = off: leave out the WAL flush both sides wait for",
    )
    args = parser.parse_args()

    with database() as url, connect(url, autocommit=True) as conn:
        if args.async_commit:
            BENCH.async_commit.exec(conn)
        BENCH.create_users.exec(conn, count=args.subscriptions)
        BENCH.create_raw_table.exec(conn)
        subs = Subscriptions(conn)
        applied: list[float] = []
        baseline: list[float] = []
        print(
            f"{args.subscriptions} subscriptions, 2 events each, {args.repeat} rounds"
            + (", synchronous_commit off" if args.async_commit else "")
        )
        for round_ in range(1, args.repeat + 1):
            events = make_events(args.subscriptions, f"r{round_}")

            # Chunks of the two take turns, so that load from other processes
            # hits both alike; each side's time is summed over its chunks.
            spent = {"apply": 0.0, "baseline": 0.0}
            outcomes: set[str] = set()
            for at in range(0, len(events), CHUNK):
                chunk = events[at : at + CHUNK]
                start = time.perf_counter()
                for event in chunk:
                    BENCH.insert_raw.exec(conn, payload=Jsonb(event))
                spent["baseline"] += time.perf_counter() - start
                start = time.perf_counter()
                for event in chunk:
                    outcomes.add(subs.apply_stripe_event(event))
                spent["apply"] += time.perf_counter() - start
            assert outcomes == {"applied"}, outcomes
            baseline.append(rate(len(events), spent["baseline"]))
            applied.append(rate(len(events), spent["apply"]))

            print(
                f"round {round_}: apply_stripe_event {applied[-1]:8.0f} events/s   "
                f"bare INSERT {baseline[-1]:8.0f} events/s   "
                f"ratio {applied[-1] / baseline[-1]:.2f}x"
            )
        counts = {row["outcome"]: row["n"] for row in BENCH.outcome_counts.many(conn)}
        print(f"stripe_events outcomes: {counts}")

    apply_median, base_median = statistics.median(applied), statistics.median(baseline)
    ratio = apply_median / base_median
    print(
        f"median: apply_stripe_event {apply_median:.0f} events/s, "
        f"bare INSERT {base_median:.0f} events/s, "
        f"ratio {ratio:.2f}x (target >= {TARGET}x): {'met' if ratio >= TARGET else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
