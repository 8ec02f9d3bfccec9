"""CSV import and export speed and client memory, beside their baselines, measured in one run.

    .venv/bin/python bench/csv_import.py [--rows N] [--repeat 3] [--rss-check]

Generates an N-row x 8-column CSV (quotes, commas, embedded newlines; 1,000,000
rows is about 114 MB), then, --repeat times, interleaved:

* import_csv (in a child process: its rows/s and its peak RSS);
* baseline (a): psql ``\\copy`` into a staging table + INSERT ... SELECT
  jsonb_build_object into a table shaped like the old app's CsvRow (bigint id
  key, (upload_id, row_index) index, FK to uploads), built in schema bench_csv;
* baseline (b): psycopg executemany of jsonb rows into that table (on the
  first --executemany-rows rows: it is slow, and rows/s is a rate);
* export_csv to a file vs a server-side COPY TO of the same rows to a file.

Prints every figure, the medians, and the ratios against the targets (import
>= 2x (a) and >= 4x (b); export >= 0.85x COPY TO; peak RSS <= 64 MB).
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
import os, resource, sys, time
import psycopg
sys.path.insert(0, sys.argv[4])
from trampolin.csv_uploads import CsvUploads
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    start = time.perf_counter()
    upload = CsvUploads(conn).import_csv(user_id=sys.argv[2], source=sys.argv[3])
    elapsed = time.perf_counter() - start
print(upload.id, upload.total_rows, elapsed)
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


def run_import(url: str, user_id: uuid.UUID, path: Path) -> tuple[int, int, float, float]:
    """import_csv in a child process: upload id, rows, seconds, peak RSS in MiB."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(user_id), str(path), str(ROOT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"import child failed ({proc.returncode})")
    upload_id, total, elapsed = output.split()
    return int(upload_id), int(total), float(elapsed), usage.ru_maxrss / 1024


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


def run_export(url: str, upload_id: int, out: Path) -> tuple[int, float]:
    with psycopg.connect(url, autocommit=True) as conn, out.open("wb") as f:
        start = time.perf_counter()
        count = CsvUploads(conn).export_csv(upload_id, f)
        return count, time.perf_counter() - start


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

        ours: list[float] = []
        rss: list[float] = []
        psql_rates: list[float] = []
        many_rates: list[float] = []
        export_rates: list[float] = []
        copy_rates: list[float] = []
        last_upload = 0
        for run in range(1, args.repeat + 1):
            if last_upload:
                delete_upload(url, last_upload)
            upload_id, total, elapsed, peak = run_import(url, user_id, path)
            assert total == args.rows, (total, args.rows)
            last_upload = upload_id
            ours.append(total / elapsed)
            rss.append(peak)
            print(
                f"run {run}: import_csv      {fmt(total / elapsed):>18}  "
                f"({elapsed:.2f} s, client peak RSS {peak:.1f} MiB)"
            )
            seconds = run_psql_baseline(url, path)
            psql_rates.append(args.rows / seconds)
            rate = args.rows / seconds
            print(f"run {run}: psql \\copy+jsonb {fmt(rate):>18}  ({seconds:.2f} s)")
            count, seconds = run_executemany(url, path, args.executemany_rows)
            many_rates.append(count / seconds)
            print(
                f"run {run}: executemany     {fmt(count / seconds):>18}  "
                f"({count:,} rows in {seconds:.2f} s)"
            )
            run_copy_to(url, upload_id, tmpdir / "copy.csv")  # warm the cache for both
            exports = [("export_csv", run_export, export_rates)]
            exports.append(("COPY TO STDOUT", run_copy_to, copy_rates))
            if run % 2 == 0:  # alternate which goes first
                exports.reverse()
            for label, export, rates in exports:
                count, seconds = export(url, upload_id, tmpdir / "export.csv")
                rates.append(count / seconds)
                print(f"run {run}: {label:<15} {fmt(count / seconds):>18}  ({seconds:.2f} s)")

        med: Callable[[list[float]], float] = statistics.median
        print()
        print(f"medians of {args.repeat} runs ({args.rows:,} rows):")
        print(f"  import_csv              {fmt(med(ours)):>18}")
        print(f"  (a) psql \\copy + jsonb  {fmt(med(psql_rates)):>18}")
        print(f"  (b) executemany         {fmt(med(many_rates)):>18}")
        print(f"  export_csv              {fmt(med(export_rates)):>18}")
        print(f"  COPY TO (server CSV)    {fmt(med(copy_rates)):>18}")
        print("ratios:")
        r_a = med(ours) / med(psql_rates)
        r_b = med(ours) / med(many_rates)
        r_e = med(export_rates) / med(copy_rates)
        print(f"  import_csv / (a)        {r_a:6.2f}x  {verdict(r_a, 2)}")
        print(f"  import_csv / (b)        {r_b:6.2f}x  {verdict(r_b, 4)}")
        print(f"  export_csv / COPY TO    {r_e:6.2f}x  {verdict(r_e, 0.85)}")
        peak = max(rss)
        print(f"  client peak RSS         {peak:6.1f} MiB  {verdict(peak, 64, at_most=True)}")

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
            reference = args.rows / med([r[0] for r in results["import_csv"]])
            for name, label in labels.items():
                wall, client, server = (med([r[i] for r in results[name]]) for i in range(3))
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
