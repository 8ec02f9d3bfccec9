"""`trampolin dump` / `trampolin restore` wall time beside raw pg_dump / pg_restore.

A scratch database with BENCH_ROWS csv_rows (1M by default) is dumped and
restored, rotating the sides: the raw tool (pg_dump --file, pg_restore
--dbname, the same flags); the trampolin command (the venv's console script as
a subprocess, so Python's start-up counts; its modules byte-compiled first, as
pip does when it installs a wheel); the library call (backup.dump /
backup.restore, in this process); the raw tool again, whose ratio to the
first is the machine's noise floor; and, if BENCH_BEFORE names another
trampolin console script (an older checkout's), that one. Each restore goes
into a freshly created empty database, and a CHECKPOINT and a sync precede
every timed run (else whichever side runs after a restore or a dump pays for
its dirty pages). The verdict is the median of the rounds' ratios to raw
(target: overhead <= 10 % below 10M rows, <= 5 % from 10M on), printed with a
90 % bootstrap interval: on a shared 2-core machine one run may be several
per cent off, and more rounds (BENCH_ROUNDS) narrow it.

    .venv/bin/python bench/backup.py            # $BENCH_SERVER_URL, or 127.0.0.1:5432
    BENCH_ROUNDS=5 BENCH_ROWS=10000000 .venv/bin/python bench/backup.py
    BENCH_BEFORE=../before/.venv/bin/trampolin .venv/bin/python bench/backup.py
"""

from __future__ import annotations

import compileall
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trampolin import backup, queries  # noqa: E402
from trampolin.backup.connection import child_connection  # noqa: E402
from trampolin.backup.dump import FLAGS as DUMP_FLAGS  # noqa: E402
from trampolin.backup.restore import FLAGS as RESTORE_FLAGS  # noqa: E402
from trampolin.backup.tools import Tool, choose_tool, find_tools  # noqa: E402
from trampolin.cli.context import human_size  # noqa: E402
from trampolin.db import connect, create_database  # noqa: E402
from trampolin.migrations import Migrator  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
BEFORE = os.environ.get("BENCH_BEFORE")  # another trampolin console script, e.g. the old one
TARGET = 1.05 if ROWS >= 10_000_000 else 1.10
BENCH_QUERIES = queries.load_file(ROOT / "bench" / "backup.sql")


def server_url() -> str:
    server = os.environ.get("BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432")
    url = server.rstrip("/") + "/postgres"
    from trampolin.config import normalize_url

    return normalize_url(url)


def db(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (a URL: the CLI takes URLs)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop(admin: str, name: str) -> None:
    with connect(admin, autocommit=True) as conn:
        queries.load("admin").drop_database.exec(conn, identifiers={"database": name})


def fresh(admin: str, name: str) -> str:
    drop(admin, name)
    create_database(admin, name)
    return db(admin, name)


def settle(admin: str) -> None:
    """A checkpoint and a sync before each timed run, so that no side pays for the
    dirty pages of another (the server's, or the previous side's 25 MB dump file)."""
    with connect(admin, autocommit=True) as conn:
        BENCH_QUERIES.checkpoint.exec(conn)
    os.sync()


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    check(argv, env)
    return time.perf_counter() - started


def check(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {result.stderr.strip()}")


def cli_command() -> list[str]:
    """The installed ``trampolin`` console script (what people run), else python -m."""
    script = Path(sys.executable).with_name("trampolin")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "trampolin"]


def command(side: str) -> list[str]:
    return [BEFORE] if side == "before" and BEFORE else cli_command()


def time_dump(side: str, source: str, tool: Tool, tmp: Path, env: dict[str, str]) -> float:
    """Seconds to dump ``source`` to tmp/<side>.dump: raw pg_dump, a CLI or the library."""
    out = tmp / f"{side.replace(' ', '_')}.dump"
    if side in ("raw", "raw again"):
        child = child_connection(source)
        argv = [str(tool.path), *DUMP_FLAGS, f"--file={out}", f"--dbname={child.dbname}"]
        return timed(argv, child.env)
    if side in ("cli", "before"):
        return timed([*command(side), "dump", "-q", "-o", str(out)], env)
    started = time.perf_counter()
    backup.dump(source, out)
    return time.perf_counter() - started


def time_restore(side: str, target: str, tool: Tool, tmp: Path, env: dict[str, str]) -> float:
    """Seconds to restore tmp/<side>.dump into the empty ``target``."""
    archive = tmp / f"{side.replace(' ', '_')}.dump"
    if side in ("raw", "raw again"):
        child = child_connection(target)
        argv = [
            str(tool.path), *RESTORE_FLAGS, f"--dbname={child.dbname}", str(archive)
        ]  # fmt: skip
        return timed(argv, child.env)
    if side in ("cli", "before"):
        restore = [*command(side), "restore", "-q", str(archive), "--target", target, "--yes"]
        return timed(restore, env)
    started = time.perf_counter()
    backup.restore(archive, target, yes=True)
    return time.perf_counter() - started


# "raw again" is raw pg_dump / pg_restore a second time: its ratio to raw is
# the noise floor of the machine, against which the others' ratios are read.
SIDES = ("raw", "cli", "library", "raw again", *(("before",) if BEFORE else ()))
Figures = dict[str, list[float]]


def measure(
    rounds: int,
    admin: str,
    source: str,
    target_name: str,
    tools: tuple[Tool, Tool],
    tmp: Path,
    *,
    show: bool,
) -> tuple[Figures, Figures]:
    """Dump and restore timings per side, rotating the order every round."""
    pg_dump, pg_restore = tools
    env = {**os.environ, "DATABASE_URL": source}
    dumps: Figures = {side: [] for side in SIDES}
    restores: Figures = {side: [] for side in SIDES}
    for round_number in range(rounds):
        turn = round_number % len(SIDES)
        order = SIDES[turn:] + SIDES[:turn]
        for side in order:
            settle(admin)
            dumps[side].append(time_dump(side, source, pg_dump, tmp, env))
        for side in order:
            target = fresh(admin, target_name)
            settle(admin)
            restores[side].append(time_restore(side, target, pg_restore, tmp, env))
        if show:
            print(
                f"round {round_number + 1}: "
                + ", ".join(f"dump {side} {dumps[side][-1]:.2f}s" for side in SIDES)
                + "; "
                + ", ".join(f"restore {side} {restores[side][-1]:.2f}s" for side in SIDES)
            )
    return dumps, restores


def report(dumps: Figures, restores: Figures) -> None:
    """Each side's median beside raw's, and the verdict on the median of the per-round
    ratios: the sides of one round run back to back, so a slow spell of this shared
    machine weighs on both halves of a ratio alike."""
    for label, figures in (("dump", dumps), ("restore", restores)):
        raw = statistics.median(figures["raw"])
        sides = [
            ("cli", "trampolin " + label),
            ("library", f"backup.{label}()"),
            ("raw again", f"raw {label} again"),
            *([("before", f"before: {label}")] if BEFORE else []),
        ]
        for side, what in sides:
            ours = statistics.median(figures[side])
            rounds = zip(figures[side], figures["raw"], strict=True)
            ratios = sorted(mine / base for mine, base in rounds)
            paired = statistics.median(ratios)
            low, high = median_interval(ratios)
            if side == "raw again":
                verdict = "(the noise floor)"
            else:
                verdict = f"target <= +{100 * (TARGET - 1):.0f} %: " + (
                    "ok" if paired <= TARGET else "OVER TARGET"
                )
            print(
                f"  {what:<20} {ours:6.2f}s vs raw {raw:6.2f}s ({ours - raw:+.2f}s): "
                f"ratio {paired:.3f} ({100 * (paired - 1):+.1f} %, 90 % interval "
                f"{100 * (low - 1):+.1f} to {100 * (high - 1):+.1f} %); {verdict}"
            )


def median_interval(values: list[float], resamples: int = 2000) -> tuple[float, float]:
    """A 90 % bootstrap interval of the median of ``values``: how far another run of
    as many rounds on this machine might put it."""
    rng = random.Random(0)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples)
    )
    return medians[resamples // 20], medians[resamples - 1 - resamples // 20]


FIXED_ROUNDS = 12


def fixed_cost(dumps: Figures, restores: Figures) -> dict[str, float]:
    """Per command, the median of the rounds' differences to raw, in seconds."""
    costs = {}
    for label, figures in (("dump", dumps), ("restore", restores)):
        parts = []
        others = [("cli", "trampolin CLI"), ("library", "library call")]
        for side, what in others + ([("before", "before CLI")] if BEFORE else []):
            rounds = zip(figures[side], figures["raw"], strict=True)
            cost = statistics.median(mine - base for mine, base in rounds)
            costs[f"{label} {side}"] = cost
            parts.append(f"{what} {1000 * cost:+.0f} ms")
        print(f"  {label:<8} " + ", ".join(parts))
    return costs


def main() -> None:
    # An editable install under PYTHONDONTWRITEBYTECODE would otherwise compile
    # every trampolin module on every run; an installed wheel never does.
    compileall.compile_dir(ROOT / "trampolin", quiet=1)
    admin = server_url()
    prefix = f"trampolin_bench_backup_{os.getpid()}"
    source = fresh(admin, prefix)
    target_name = f"{prefix}_target"
    tmp = Path(tempfile.mkdtemp(prefix="trampolin-bench-"))
    try:
        Migrator(source).apply()
        with connect(source, autocommit=True) as conn:
            major = conn.info.server_version // 10000
        pg_dump = choose_tool("pg_dump", find_tools("pg_dump"), major)
        child = child_connection(source)
        argv = [str(pg_dump.path), *DUMP_FLAGS, f"--file={tmp / 'raw.dump'}"]
        check([*argv, f"--dbname={child.dbname}"], child.env)
        pg_restore = backup.list_archive(tmp / "raw.dump", min_major=major).tool
        tools = (pg_dump, pg_restore)
        print(f"tools: {pg_dump} and {pg_restore} ({pg_dump.path.parent}); server {major}")

        # The per-command cost that does not grow with the data: Python's start,
        # the imports, the checks, the migration status and the exit. Measured
        # apart, on an empty schema, because it is small beside the 1M runs' noise.
        print(f"fixed cost per command (empty schema, median of {FIXED_ROUNDS} rounds):")
        fixed = measure(FIXED_ROUNDS, admin, source, target_name, tools, tmp, show=False)
        costs = fixed_cost(*fixed)

        started = time.perf_counter()
        queries = BENCH_QUERIES
        with connect(source, autocommit=True) as conn:
            queries.fill_user.exec(conn)
            queries.fill_uploads.exec(conn, uploads=max(1, ROWS // 1000))
            queries.fill_rows.exec(conn)
            row = queries.csv_row_count.one(conn)
        assert row is not None
        print(f"filled {row['n']:,} csv_rows in {time.perf_counter() - started:.1f}s")

        dumps, restores = measure(ROUNDS, admin, source, target_name, tools, tmp, show=True)
        size = (tmp / "raw.dump").stat().st_size
        print(f"archive: {human_size(size)} ({row['n']:,} csv_rows); medians of {ROUNDS}:")
        report(dumps, restores)
        for label, figures in (("dump", dumps), ("restore", restores)):
            raw = statistics.median(figures["raw"])
            cost = costs[f"{label} cli"]
            print(
                f"  the CLI's fixed cost alone, {1000 * cost:+.0f} ms, is "
                f"{100 * cost / raw:+.1f} % of raw {label}'s {raw:.2f}s"
            )
    finally:
        for path in tmp.iterdir():
            path.unlink()
        tmp.rmdir()
        drop(admin, target_name)
        drop(admin, prefix)


if __name__ == "__main__":
    main()
