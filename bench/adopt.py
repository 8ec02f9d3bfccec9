"""Adoption speed and client memory beside a hand-written INSERT ... SELECT, in one run.

    .venv/bin/python bench/adopt.py [--users 100000] [--rows-per-upload 138] [--rounds 3]

Builds the app's Prisma database with tests/adopt_support.py (with the defaults
100,000 users and about 1,000,000 CsvRows; accounts, sessions, subscriptions,
searches, analyses and refunds too), vacuumed and analyzed as autovacuum leaves
a live database, as a template; adopts one copy of it once (the baseline's
starting point); then for each round, the two sides taking turns:

* adoption: a child process runs trampolin.adopt.adopt_database on a fresh copy
  of the Prisma template: the whole of it (migrations, checks, every table,
  derived rows, archive, commit), timed inside the child (imports excluded);
  the parent reads the child's peak RSS from wait4();
* baseline: on a fresh copy of the adopted database, csv_rows is emptied and
  filled again from prisma_archive."CsvRow" by one hand-written
  INSERT ... SELECT (bench/adopt.sql), timed with its COMMIT.

Both are CsvRows per second of the same rows. Two ratios over the baseline:
the adoption's CsvRow step (the like-for-like figure, target >= 0.8; the exit
code follows it) and the whole adoption (which moves everything else too).
Memory: the adoption child's peak RSS beside the same
on a Prisma database --small-factor times smaller, and beside a child that only
imports trampolin.adopt and connects (the floor): flat means the same figure
at both sizes. Scratch databases live on $BENCH_SERVER_URL (default the local
server) and are dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import DEFAULT_SERVER, ROOT

from tests.adopt_support import build_prisma_db
from trampolin import queries
from trampolin.db import connect

BENCH = queries.load_file(Path(__file__).with_name("adopt.sql"))
ADMIN = queries.load("admin")
TARGET = 0.8


def server() -> str:
    return os.environ.get("BENCH_SERVER_URL", DEFAULT_SERVER).rstrip("/")


@contextmanager
def database(template: str | None = None) -> Iterator[str]:
    """A new database (a copy of ``template`` if given); its name, dropped afterwards."""
    name = f"bench_adopt_{uuid.uuid4().hex[:10]}"
    with connect(f"{server()}/postgres", autocommit=True) as conn:
        if template is None:
            ADMIN.create_database.exec(conn, identifiers={"database": name})
        else:
            BENCH.create_database_from.exec(
                conn, identifiers={"database": name, "template": template}
            )
    try:
        yield name
    finally:
        with connect(f"{server()}/postgres", autocommit=True) as conn:
            ADMIN.drop_database.exec(conn, identifiers={"database": name})


def child(kind: str, name: str) -> tuple[dict[str, float], float]:
    """Run this script as a child doing ``kind``; (the seconds it reported, peak RSS in MiB)."""
    argv = [sys.executable, __file__, "--child", kind, f"{server()}/{name}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=ROOT, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {kind} failed with exit code {proc.returncode}")
    return json.loads(out), usage.ru_maxrss / 1024  # KiB on Linux


def run_child(kind: str, url: str) -> None:
    """The child's side: adopt (timed, and its CsvRow step) or only connect (the memory floor)."""
    from trampolin import adopt

    started = time.perf_counter()
    steps = [("start", started)]
    if kind == "adopt":
        report = adopt.adopt_database(
            url, progress=lambda line: steps.append((line, time.perf_counter()))
        )
        assert report.state == "adopted", report.state
    else:
        with connect(url) as conn:
            BENCH.ping.one(conn)
    ended = time.perf_counter()
    csv_step = next(
        (at - steps[i - 1][1] for i, (line, at) in enumerate(steps) if line.startswith('"CsvRow"')),
        0.0,
    )
    print(json.dumps({"seconds": ended - started, "csv_rows": csv_step}))


def baseline(adopted: str) -> float:
    """Seconds of the hand-written INSERT ... SELECT of every CsvRow, with its COMMIT."""
    with database(adopted) as name, connect(f"{server()}/{name}") as conn:
        BENCH.empty_csv_rows.exec(conn)
        started = time.perf_counter()
        BENCH.baseline_insert.execrows(conn)
        conn.commit()
        return time.perf_counter() - started


def build(users: int, rows_per_upload: int) -> tuple[str, int]:
    """A Prisma template (name) and its CsvRow count; dropped by the caller."""
    name = f"bench_adopt_tpl_{uuid.uuid4().hex[:10]}"
    with connect(f"{server()}/postgres", autocommit=True) as conn:
        ADMIN.create_database.exec(conn, identifiers={"database": name})
    url = f"{server()}/{name}"
    build_prisma_db(
        url, users=users, rows_per_upload=rows_per_upload, passwords=True, business=True
    )
    with connect(url, autocommit=True) as conn:
        BENCH.vacuum_analyze.exec(conn)  # as autovacuum leaves a live database: hint bits, stats
        count = BENCH.csv_row_count.one(conn)
    assert count is not None
    return name, int(count["n"])


def drop(name: str) -> None:
    with connect(f"{server()}/postgres", autocommit=True) as conn:
        ADMIN.drop_database.exec(conn, identifiers={"database": name})


def spread(values: list[float]) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    form = ",.0f" if mid >= 100 else ".2f"
    rest = f"range {low:{form}}-{high:{form}}, spread {(high - low) / mid:.0%}"
    return f"median {mid:{form}} ({rest})"


def one_round(
    round_no: int, big: str, small: str, adopted: str, figures: dict[str, list[float]]
) -> None:
    """One round, the sides in turns (adoption first in odd rounds), into ``figures``."""
    sides = ["adopt", "baseline"] if round_no % 2 else ["baseline", "adopt"]
    for side in sides:
        if side == "baseline":
            figures["baseline"].append(baseline(adopted))
            continue
        with database(big) as copy:
            took, rss = child("adopt", copy)
        figures["adoption"].append(took["seconds"])
        figures["csv_step"].append(took["csv_rows"])
        figures["rss_big"].append(rss)
    with database(small) as copy:
        figures["rss_small"].append(child("adopt", copy)[1])
        figures["rss_floor"].append(child("floor", copy)[1])
    figures["step_ratio"].append(figures["baseline"][-1] / figures["csv_step"][-1])
    figures["whole_ratio"].append(figures["baseline"][-1] / figures["adoption"][-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rows-per-upload", type=int, default=138)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small-factor", type=int, default=10)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(*args.child)
        return 0
    started = time.perf_counter()
    big, rows = build(args.users, args.rows_per_upload)
    small, small_rows = build(args.users // args.small_factor, args.rows_per_upload)
    print(
        f"Prisma databases: {args.users} users, {rows} CsvRows; {args.users // args.small_factor} "
        f"users, {small_rows} CsvRows (built in {time.perf_counter() - started:.0f}s)"
    )
    names = "adoption csv_step baseline step_ratio whole_ratio rss_big rss_small rss_floor"
    figures: dict[str, list[float]] = {name: [] for name in names.split()}
    try:
        with database(big) as adopted:
            child("adopt", adopted)  # the baseline's starting point
            for round_no in range(1, args.rounds + 1):
                one_round(round_no, big, small, adopted, figures)
                last = {name: values[-1] for name, values in figures.items()}
                print(
                    f"round {round_no}: adoption {last['adoption']:.1f}s, its CsvRow step "
                    f"{last['csv_step']:.1f}s, baseline {last['baseline']:.1f}s; peak RSS "
                    f"{last['rss_big']:.0f} MiB ({small_rows} rows: {last['rss_small']:.0f}, "
                    f"floor {last['rss_floor']:.0f})"
                )
    finally:
        drop(big)
        drop(small)
    report(figures, rows, small_rows)
    return 0 if statistics.median(figures["step_ratio"]) >= TARGET else 1


def report(figures: dict[str, list[float]], rows: int, small_rows: int) -> None:
    rates = {
        name: [rows / t for t in figures[name]] for name in ("adoption", "csv_step", "baseline")
    }
    print(f"CsvRows/s, whole adoption:        {spread(rates['adoption'])}")
    print(f"CsvRows/s, adoption's CsvRow step: {spread(rates['csv_step'])}")
    print(f"CsvRows/s, hand-written baseline: {spread(rates['baseline'])}")
    print(f"ratio, CsvRow step / baseline:    {spread(figures['step_ratio'])}; target >= {TARGET}")
    print(f"ratio, whole adoption / baseline: {spread(figures['whole_ratio'])}")
    print(
        f"client peak RSS (MiB): {rows} rows {spread(figures['rss_big'])}; {small_rows} rows "
        f"{spread(figures['rss_small'])}; import and connect only {spread(figures['rss_floor'])}"
    )


if __name__ == "__main__":
    sys.exit(main())
