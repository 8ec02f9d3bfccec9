"""CSV import and export speed and client memory, beside their baselines, measured in one run.

    .venv/bin/python bench/csv_import.py [--rows N] [--repeat 3] [--rss-check]
        [--before /work/wt/before]

Generates an N-row x 8-column CSV (quotes, commas, embedded newlines; 1,000,000
rows is about 114 MB), then, --repeat times, interleaved:

* import_csv and export_csv in child processes (rows/s, import's peak RSS), for
  CsvUploads and for AsyncCsvUploads, and with --before for the CsvUploads of
  another checkout (e.g. the code before a change, run by that checkout's own
  .venv/bin/python), so that its figures and ours come from the same run;
* baseline (a): psql ``\\copy`` into a staging table + INSERT ... SELECT
  jsonb_build_object into a table shaped like the old app's CsvRow (bigint id
  key, (upload_id, row_index) index, FK to uploads), built in schema bench_csv;
* baseline (b): psycopg executemany of jsonb rows into that table (on the
  first --executemany-rows rows: it is slow, and rows/s is a rate);
* export_csv to a file vs a server-side COPY TO of the same rows to a file.

Prints every figure, the medians, and the ratios against the targets (import
>= 2x (a) and >= 4x (b); export >= 0.85x COPY TO; peak RSS <= 64 MB; with
--before, import and export >= 0.95x of the other checkout's).
--rss-check also imports generated ~100 MB and ~1 GB files (in a temporary
directory, deleted afterwards) to show that peak RSS stays flat.

It works in a scratch database created on $BENCH_SERVER_URL (default
postgresql://postgres@127.0.0.1:5432) and dropped at the end.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trampolin import queries  # noqa: E402
from trampolin.csv_uploads import CsvUploads  # noqa: E402

HERE = Path(__file__).resolve().parent
BENCH = queries.load_file(HERE / "csv_import.sql")
ADMIN_URL = (
    os.environ.get("BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
    + "/postgres"
)
HEADERS = ["id", "first_name", "last_name", "email", "city", "note", "amount", "created_at"]

CHILD = """
import asyncio, sys, time
sys.path.insert(0, sys.argv[3])
import psycopg
from trampolin import csv_uploads
side, job, url, _, upload_or_user, path = sys.argv[1:7]

class Sink:
    def __init__(self, f):
        self.f = f
    async def write(self, data):
        self.f.write(data)

def run_sync():
    with psycopg.connect(url, autocommit=True) as conn:
        uploads = csv_uploads.CsvUploads(conn)
        start = time.perf_counter()
        if job == "import":
            upload = uploads.import_csv(user_id=upload_or_user, source=path)
            return upload.id, upload.total_rows, time.perf_counter() - start
        with open(path, "wb") as f:
            count = uploads.export_csv(int(upload_or_user), f)
        return int(upload_or_user), count, time.perf_counter() - start

async def run_async():
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        uploads = csv_uploads.AsyncCsvUploads(conn)
        start = time.perf_counter()
        if job == "import":
            upload = await uploads.import_csv(user_id=upload_or_user, source=path)
            return upload.id, upload.total_rows, time.perf_counter() - start
        with open(path, "wb") as f:
            count = await uploads.export_csv(int(upload_or_user), Sink(f))
        return int(upload_or_user), count, time.perf_counter() - start

print(*(asyncio.run(run_async()) if side == "async" else run_sync()))
"""


def generate(path: Path, rows: int) -> int:
    """Write the benchmark file; its size in bytes."""
    first = ["Ana", "Bo", "Chloé", "Dmitri", "Eva", "Fatima", "Gus", "Hana", "Ivo", "Jules"]
    last = ["Smith", "O'Neil", "García", "Müller", "Nguyen", "de Vries", "Kowalski", "Rossi"]
    cities = ["Berlin", "Paris, France", "São Paulo", "New York", "Zürich", "Kraków"]
    notes = [
        'said "hello"',
        "plain",
        'a, b, and "c"',
        "",
        "multi\nline note",
        "tab\there",
        "x" * 40,
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(HEADERS)
        for i in range(1, rows + 1):
            fn = first[i % 10]
            writer.writerow(
                [
                    i,
                    fn,
                    last[(i * 7) % 8],
                    f"{fn.lower()}.{i}@example.com",
                    cities[i % 6],
                    notes[(i * 3) % 7] + " lorem ipsum dolor",
                    f"{(i * 37) % 100000 / 100:.2f}",
                    f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T12:{i % 60:02d}:00Z",
                ]
            )
    return path.stat().st_size


def rows_for_bytes(target: int) -> int:
    return max(1, target // 115)


@contextmanager
def database() -> Iterator[str]:
    """A migrated scratch database on $BENCH_SERVER_URL, dropped afterwards."""
    from trampolin.db import create_database
    from trampolin.migrations import Migrator

    name = f"trampolin_bench_csv_{os.getpid()}"
    create_database(ADMIN_URL, name)
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        Migrator(url).apply()
        yield url
    finally:
        admin = queries.load_file(ROOT / "sql" / "queries" / "admin.sql")
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            admin.drop_database.exec(conn, identifiers={"database": name})


def psql_env(url: str) -> dict[str, str]:
    """libpq environment for psql, so that no password shows in its argv."""
    params = conninfo_to_dict(url)
    env = dict(os.environ)
    for key, var in [
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("user", "PGUSER"),
        ("password", "PGPASSWORD"),
        ("dbname", "PGDATABASE"),
    ]:
        if params.get(key):
            env[var] = str(params[key])
    return env


@dataclass(frozen=True)
class Code:
    """Whose CsvUploads a child process runs: a checkout, its python, and a side."""

    label: str
    root: Path
    python: str
    side: str = "sync"


OURS = Code("CsvUploads", ROOT, sys.executable)
OURS_ASYNC = Code("AsyncCsvUploads", ROOT, sys.executable, "async")


def run_child(
    code: Code, job: str, url: str, key: str, path: Path
) -> tuple[int, int, float, float]:
    """import_csv or export_csv in a child process: upload id, rows, seconds, peak RSS (MiB)."""
    proc = subprocess.Popen(
        [code.python, "-c", CHILD, code.side, job, url, str(code.root), key, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=code.root,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{job} child of {code.label} failed ({proc.returncode})")
    upload_id, total, elapsed = output.split()
    return int(upload_id), int(total), float(elapsed), usage.ru_maxrss / 1024


def run_import(
    url: str, user_id: uuid.UUID, path: Path, code: Code = OURS
) -> tuple[int, int, float, float]:
    """import_csv in a child process: upload id, rows, seconds, peak RSS in MiB."""
    return run_child(code, "import", url, str(user_id), path)


def backend_cpu(conn: psycopg.Connection[Any]) -> float | None:
    """CPU seconds used so far by the connection's server process (same host only)."""
    try:
        fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_variant(url: str, user_id: uuid.UUID, path: Path, variant: str) -> tuple[float, ...]:
    """One loader in this process: wall seconds, client CPU seconds, server CPU seconds."""
    from trampolin import queries

    q = queries.load("csv_uploads")
    with psycopg.connect(url, autocommit=True) as conn:
        server_before = backend_cpu(conn)
        client_before = time.process_time()
        start = time.perf_counter()
        if variant == "import_csv":
            upload_id = CsvUploads(conn).import_csv(user_id=user_id, source=path).id
        else:
            statement = BENCH.copy_rows_binary.sql if variant == "binary" else q.copy_rows.sql
            row = q.insert_upload.one(conn, user_id=user_id, filename="variant.csv")
            assert row is not None
            upload_id = row["id"]
            with conn.transaction(), path.open(newline="", encoding="utf-8") as f:
                reader = csv.reader(f, strict=True)
                next(reader)
                with conn.cursor() as cur, cur.copy(statement) as copy:
                    copy.set_types(["bigint", "integer", "text[]"])
                    for index, values in enumerate(reader, start=1):
                        copy.write_row((upload_id, index, values))
        wall = time.perf_counter() - start
        client = time.process_time() - client_before
        server_after = backend_cpu(conn)
    delete_upload(url, upload_id)
    if server_after is None or server_before is None:
        return wall, client, float("nan")
    return wall, client, server_after - server_before


def run_psql_baseline(url: str, path: Path) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        BENCH.reset_baseline.exec(conn)
        BENCH.vacuum_rows.exec(conn)
    with path.open("rb") as stdin:
        start = time.perf_counter()
        subprocess.run(
            ["psql", "-X", "-q", "-f", str(HERE / "csv_baseline.psql")],
            stdin=stdin,
            env=psql_env(url),
            check=True,
        )
        return time.perf_counter() - start


def run_executemany(url: str, path: Path, limit: int) -> tuple[int, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        BENCH.reset_baseline.exec(conn)
        start = time.perf_counter()
        with path.open(newline="", encoding="utf-8") as f, conn.transaction():
            reader = csv.reader(f, strict=True)
            headers = next(reader)
            params = (
                {"row_index": i, "data": Jsonb(dict(zip(headers, row, strict=True)))}
                for i, row in enumerate(reader, start=1)
                if i <= limit
            )
            with conn.cursor() as cur:
                cur.executemany(BENCH.insert_app_row.sql, params)
        elapsed = time.perf_counter() - start
        count = BENCH.count_baseline.one(conn)
    assert count is not None
    return int(count["n"]), elapsed


def run_copy_to(url: str, upload_id: int, out: Path) -> tuple[int, float]:
    with psycopg.connect(url, autocommit=True) as conn, out.open("wb") as f:
        start = time.perf_counter()
        count = 0
        buffered: list[bytes] = []
        with BENCH.copy_to_baseline.copy(conn, upload_id=upload_id) as copy:
            for data in copy:
                buffered.append(bytes(data))
                count += 1
                if len(buffered) >= 2048:
                    f.write(b"".join(buffered))
                    buffered.clear()
        f.write(b"".join(buffered))
        return count, time.perf_counter() - start


def delete_upload(url: str, upload_id: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        CsvUploads(conn).delete(upload_id)
        BENCH.vacuum_rows.exec(conn)


def fmt(rate: float) -> str:
    return f"{rate:,.0f} rows/s"


def verdict(ratio: float, target: float, *, at_most: bool = False) -> str:
    ok = ratio <= target if at_most else ratio >= target
    return f"{'OK' if ok else 'MISSED'} (target {'<=' if at_most else '>='} {target:g})"


def before_code(root: Path) -> Code:
    """The CsvUploads of another checkout, run by its own .venv if it has one."""
    python = root / ".venv" / "bin" / "python"
    return Code(f"before ({root})", root, str(python) if python.exists() else sys.executable)


class Timings:
    """Rows/s of each measurement by run, printed as it comes, then medians and ratios."""

    def __init__(self) -> None:
        self.rates: dict[str, list[float]] = {}
        self.rss: dict[str, float] = {}

    def add(self, label: str, rate: float, run: int, note: str) -> None:
        self.rates.setdefault(label, []).append(rate)
        print(f"run {run}: {label:<44} {fmt(rate):>18}  ({note})")

    def median(self, label: str) -> float:
        return statistics.median(self.rates[label])

    def report(self, repeat: int, rows: int, codes: list[Code]) -> None:
        print(f"\nmedians of {repeat} runs ({rows:,} rows):")
        for label in self.rates:
            print(f"  {label:<44} {fmt(self.median(label)):>18}")
        ours = self.median(f"import {OURS.label}")
        print("ratios:")
        self.ratio("import_csv / (a)", ours / self.median("(a) psql \\copy + jsonb"), 2)
        self.ratio("import_csv / (b)", ours / self.median("(b) executemany"), 4)
        export = self.median(f"export {OURS.label}")
        self.ratio("export_csv / COPY TO", export / self.median("COPY TO STDOUT"), 0.85)
        # The twin and the other checkout run next to ours in every run: the median of
        # those runs' own ratios is steadier than a ratio of medians when load drifts.
        for code in codes[1:]:
            before = code.label.startswith("before")
            for job in ("import", "export"):
                mine, theirs = f"{job} {OURS.label}", f"{job} {code.label}"
                if before:
                    self.ratio(f"{mine} / {code.label}", self.paired(mine, theirs), 0.95)
                else:
                    self.ratio(f"{theirs} / {OURS.label}", self.paired(theirs, mine), None)
        for label, peak in self.rss.items():
            print(
                f"  client peak RSS, {label:<27} {peak:6.1f} MiB  {verdict(peak, 64, at_most=True)}"
            )

    def paired(self, label: str, other: str) -> float:
        """The median over runs of label's rate / other's rate in the same run."""
        return statistics.median(
            a / b for a, b in zip(self.rates[label], self.rates[other], strict=True)
        )

    @staticmethod
    def ratio(label: str, value: float, target: float | None) -> None:
        print(f"  {label:<44} {value:6.2f}x  {verdict(value, target) if target else ''}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the file")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument(
        "--executemany-rows",
        type=int,
        default=200_000,
        help="rows executemany inserts per run (rows/s is a rate)",
    )
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also time psycopg write_row (binary and text) instead of import_csv's COPY lines",
    )
    parser.add_argument(
        "--rss-check", action="store_true", help="also import ~100 MB and ~1 GB files"
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="CHECKOUT",
        help="also run the CsvUploads of this checkout (e.g. a worktree of main), same run",
    )
    args = parser.parse_args()
    if shutil.which("psql") is None:
        print("psql is not on PATH: the \\copy baseline needs it", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="trampolin-bench-csv-") as tmp, database() as url:
        tmpdir = Path(tmp)
        path = tmpdir / "bench.csv"
        start = time.perf_counter()
        size = generate(path, args.rows)
        print(
            f"file: {args.rows:,} rows x 8 columns, {size / 1e6:.1f} MB "
            f"(generated in {time.perf_counter() - start:.1f} s)"
        )
        with psycopg.connect(url, autocommit=True) as conn:
            BENCH.create_schema.exec(conn)
            row = BENCH.insert_user.one(conn, email="bench-csv@example.com")
            assert row is not None
            user_id = uuid.UUID(str(row["id"]))
            admin = queries.load_file(ROOT / "sql" / "queries" / "admin.sql")
            version = admin.server_version.one(conn)
        server = version["version"] if version else "?"
        print(f"server: PostgreSQL {server}; client: {os.cpu_count()} cpus")

        codes = [OURS, OURS_ASYNC]
        if args.before is not None:
            codes.append(before_code(args.before))
        last_upload, timings = 0, Timings()
        for run in range(1, args.repeat + 1):
            order = codes[run % len(codes) :] + codes[: run % len(codes)]  # who goes first turns
            for code in order:
                if last_upload:
                    delete_upload(url, last_upload)
                last_upload, total, elapsed, peak = run_import(url, user_id, path, code)
                assert total == args.rows, (total, args.rows)
                timings.add(f"import {code.label}", total / elapsed, run, f"{elapsed:.2f} s")
                timings.rss[code.label] = max(timings.rss.get(code.label, 0.0), peak)
            seconds = run_psql_baseline(url, path)
            timings.add("(a) psql \\copy + jsonb", args.rows / seconds, run, f"{seconds:.2f} s")
            count, seconds = run_executemany(url, path, args.executemany_rows)
            timings.add("(b) executemany", count / seconds, run, f"{count:,} rows")
            run_copy_to(url, last_upload, tmpdir / "copy.csv")  # warm the cache for all
            out = tmpdir / "export.csv"
            for code in order:
                _, count, seconds, _ = run_child(code, "export", url, str(last_upload), out)
                timings.add(f"export {code.label}", count / seconds, run, f"{seconds:.2f} s")
            count, seconds = run_copy_to(url, last_upload, out)
            timings.add("COPY TO STDOUT", count / seconds, run, f"{seconds:.2f} s")
        timings.report(args.repeat, args.rows, codes)

        if args.variants:
            print()
            print(
                f"loader variants (in this process, interleaved, median of {args.repeat}; "
                "CPU per row: client / server):"
            )
            if last_upload:
                delete_upload(url, last_upload)
            last_upload = 0
            labels = {
                "import_csv": "import_csv (COPY text lines)",
                "binary": "write_row, FORMAT BINARY",
                "text": "write_row, text",
            }
            results: dict[str, list[tuple[float, ...]]] = {name: [] for name in labels}
            for _ in range(args.repeat):
                for name in labels:
                    results[name].append(run_variant(url, user_id, path, name))
            reference = args.rows / statistics.median([r[0] for r in results["import_csv"]])
            for name, label in labels.items():
                wall, client, server = (
                    statistics.median([r[i] for r in results[name]]) for i in range(3)
                )
                rate = args.rows / wall
                print(
                    f"  {label:<30}{fmt(rate):>18}  {rate / reference:4.2f}x  "
                    f"{client / args.rows * 1e6:4.1f} / {server / args.rows * 1e6:4.1f} µs"
                )

        if args.rss_check:
            print()
            print("peak RSS by file size (import_csv in a child process):")
            if last_upload:
                delete_upload(url, last_upload)
            last_upload = 0
            peaks: list[float] = []
            for target in (100_000_000, 1_000_000_000):
                big = tmpdir / f"rss-{target}.csv"
                rows = rows_for_bytes(target)
                size = generate(big, rows)
                upload_id, total, elapsed, peak = run_import(url, user_id, big)
                big.unlink()
                delete_upload(url, upload_id)
                peaks.append(peak)
                print(
                    f"  {size / 1e6:7.0f} MB, {total:>10,} rows: peak RSS {peak:6.1f} MiB "
                    f"({fmt(total / elapsed)})"
                )
            growth = peaks[1] - peaks[0]
            print(
                f"  growth from ~100 MB to ~1 GB: {growth:+.1f} MiB "
                f"{verdict(max(peaks), 64, at_most=True)}"
            )
        if last_upload:
            delete_upload(url, last_upload)
        with psycopg.connect(url, autocommit=True) as conn:
            BENCH.drop_schema.exec(conn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
