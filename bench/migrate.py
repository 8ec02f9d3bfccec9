"""`trampolin migrate` with nothing pending, beside a bare psycopg connect-and-query.

Target (issue 2): migrate <= 3x the baseline. Also `trampolin --help`.
Usage: python bench/migrate.py [--repeat N]
"""

from __future__ import annotations

import argparse
import sys

from common import ROOT, interleaved_medians, scratch_database, wall_time

TARGET = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    python = sys.executable
    baseline = (
        "import psycopg, sys\n"
        "with psycopg.connect(sys.argv[1]) as c: c.execute(open(sys.argv[2]).read()).fetchall()"
    )
    with scratch_database("bench_migrate") as url:
        env = {"DATABASE_URL": url}
        wall_time([python, "-m", "trampolin", "migrate"], env)  # apply everything once
        query = ROOT / "bench" / "sql" / "baseline_query.sql"
        medians = interleaved_medians(
            {
                "python -c psycopg connect + 1 query": lambda: wall_time(
                    [python, "-c", baseline, url, query]
                ),
                "trampolin migrate (nothing pending)": lambda: wall_time(
                    [python, "-m", "trampolin", "migrate"], env
                ),
                "trampolin --help": lambda: wall_time([python, "-m", "trampolin", "--help"]),
            },
            args.repeat,
        )
    base = medians["python -c psycopg connect + 1 query"]
    print(f"median of {args.repeat} interleaved runs each")
    for name, seconds in medians.items():
        print(f"  {name:<40} {seconds * 1000:7.1f} ms  {seconds / base:5.2f}x baseline")
    ratio = medians["trampolin migrate (nothing pending)"] / base
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"migrate / baseline = {ratio:.2f}x ({verdict} the <= {TARGET:.0f}x target)")


if __name__ == "__main__":
    main()
