"""Shared by the benchmarks: the database to use, timing, and a scratch database."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new database on $BENCH_SERVER_URL (default the local server), dropped afterwards."""
    from trampolin import queries
    from trampolin.db import connect, create_database

    server = os.environ.get("BENCH_SERVER_URL", DEFAULT_SERVER).rstrip("/")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    create_database(f"{server}/postgres", name)
    try:
        yield f"{server}/{name}"
    finally:
        with connect(f"{server}/postgres", autocommit=True) as conn:
            queries.load("admin").drop_database.exec(conn, identifiers={"database": name})


def wall_time(command: Sequence[str | Path], env: dict[str, str] | None = None) -> float:
    """Seconds one run of ``command`` takes, start to exit."""
    started = time.perf_counter()
    subprocess.run(
        [str(part) for part in command],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    return time.perf_counter() - started


def interleaved_medians(runs: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """Median of each measurement, the contenders taking turns so noise hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}
