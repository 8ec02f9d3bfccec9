"""Auth adapter throughput: session lookups and password logins, each beside its baseline.

With 100,000 users and 200,000 sessions (COPY-loaded into a scratch database
that is dropped afterwards), measures calls/s of AuthAdapter.get_session_and_user
beside the same lookup as one prepared psycopg query on the same connection,
alternating rounds and reporting medians (target: >= 0.85x). Also
create_session and use_verification_token, each beside a plain prepared
INSERT / DELETE ... RETURNING.

Passwords, at the configured bcrypt cost (TRAMPOLIN_BCRYPT_COST, default 12):
verify_credentials calls/s beside a bare bcrypt.checkpw of the same hash
(target >= 0.95x: the database is noise next to bcrypt), and the time of a
login with an unknown e-mail beside one with a known e-mail (target: within
5 %, so that timing tells no e-mails apart). Calls alternate one by one.

    .venv/bin/python bench/auth.py          # BENCH_SERVER_URL names the server to use
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import bcrypt
import psycopg
from auth_data import bench_sql, load, scratch_database

from trampolin import passwords
from trampolin.auth import AuthAdapter, hash_token

ROUNDS = 7
LOOKUPS_PER_ROUND = 4_000
BATCH = 100
WRITES_PER_ROUND = 1_500
TARGET = 0.85
LOGIN_PAIRS = 41  # of each comparison; a login at cost 12 takes about 0.25 s
LOGIN_TARGET = 0.95
TIMING_TOLERANCE = 0.05
T = TypeVar("T")


def duel(
    ours_items: Sequence[T],
    base_items: Sequence[T],
    ours: Callable[[T], object],
    base: Callable[[T], object],
    batch_size: int = BATCH,
) -> tuple[float, float]:
    """calls/s of ``ours`` and ``base``, run in alternating small batches on the same load."""
    spent = [0.0, 0.0]
    for number, start in enumerate(range(0, len(ours_items), batch_size)):
        pair = [(0, ours, ours_items), (1, base, base_items)]
        for side, call, items in pair if number % 2 == 0 else pair[::-1]:
            batch = items[start : start + batch_size]
            started = time.perf_counter()
            for item in batch:
                call(item)
            spent[side] += time.perf_counter() - started
    return len(ours_items) / spent[0], len(base_items) / spent[1]


def compare(label: str, rounds: list[tuple[float, float]], target: float | None) -> float:
    """Print the medians and their ratio; return the ratio."""
    a = statistics.median(ours for ours, _ in rounds)
    b = statistics.median(base for _, base in rounds)
    verdict = ""
    if target is not None:
        verdict = f" (target >= {target:.2f}x: {'met' if a / b >= target else 'MISSED'})"
    digits = 0 if b >= 100 else 2  # logins: a few per second
    print(
        f"{label:<24} {a:>7,.{digits}f} calls/s  baseline {b:>7,.{digits}f} calls/s  "
        f"ratio {a / b:.3f}x{verdict}"
    )
    return a / b


def paired(
    ours: Callable[[], object], base: Callable[[], object], pairs: int
) -> tuple[list[float], float, float]:
    """Time ratios ours/base of ``pairs`` adjacent calls, taking turns at going first, so
    that the load of a shared machine, which drifts over seconds, hits both alike; and
    the calls/s of each over all its calls."""
    ratios, totals = [], [0.0, 0.0]
    for number in range(pairs):
        spent = [0.0, 0.0]
        order = [(0, ours), (1, base)]
        for side, call in order if number % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            call()
            spent[side] = time.perf_counter() - started
        ratios.append(spent[0] / spent[1])
        totals = [totals[0] + spent[0], totals[1] + spent[1]]
    return ratios, pairs / totals[0], pairs / totals[1]


def spread(ratios: list[float]) -> str:
    quartiles = statistics.quantiles(ratios, n=4)
    return (
        f"median {statistics.median(ratios):.3f} (quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f})"
    )


def logins(conn: psycopg.Connection[Any], auth: AuthAdapter) -> bool:
    """The password figures; True if both targets are met."""
    email, password = "login@bench.example", "the bench user's password"
    auth.create_user(email=email, password=password)
    row = bench_sql.password_hash_of.one(conn, email=email)
    assert row is not None
    stored, secret = row["password_hash"].encode(), password.encode()

    def login() -> None:
        assert auth.verify_credentials(email, password) is not None

    def bare_checkpw() -> None:
        assert bcrypt.checkpw(secret, stored)

    def unknown() -> None:
        assert auth.verify_credentials("nobody@bench.example", password) is None

    vs_bcrypt, ours, base = paired(login, bare_checkpw, LOGIN_PAIRS)
    timing, unknown_speed, known_speed = paired(unknown, login, LOGIN_PAIRS)
    cost = passwords.hash_cost(row["password_hash"])
    print(f"logins at bcrypt cost {cost}, {LOGIN_PAIRS} pairs each (ratios: medians of the pairs)")
    # A time ratio base/ours is the calls/s ratio ours/base.
    speed = statistics.median(1 / r for r in vs_bcrypt)
    met = speed >= LOGIN_TARGET
    print(
        f"verify_credentials {ours:.2f} calls/s  bare bcrypt.checkpw {base:.2f} calls/s  "
        f"ratio {speed:.3f}x (target >= {LOGIN_TARGET:.2f}x: {'met' if met else 'MISSED'}); "
        f"time ratios {spread(vs_bcrypt)}"
    )
    unknown_time = statistics.median(timing)
    within = abs(unknown_time - 1) <= TIMING_TOLERANCE
    print(
        f"unknown e-mail {1000 / unknown_speed:.0f} ms a login  known e-mail "
        f"{1000 / known_speed:.0f} ms  ratio {unknown_time:.3f}x (target within "
        f"{TIMING_TOLERANCE:.0%}: {'met' if within else 'MISSED'}); time ratios {spread(timing)}"
    )
    return met and within


def main() -> int:
    with scratch_database() as url, psycopg.connect(url, autocommit=True) as conn:
        user_ids, tokens = load(conn)
        auth = AuthAdapter(conn)
        rng = random.Random(42)
        expires = datetime.now(UTC) + timedelta(days=30)
        lookup_sql = bench_sql.baseline_session_and_user.sql
        insert_sql = bench_sql.baseline_create_session.sql
        delete_sql = bench_sql.baseline_use_verification_token.sql

        def lookup_with_adapter(token: str) -> None:
            assert auth.get_session_and_user(token) is not None

        def lookup_by_hand(token: str) -> None:
            cur = conn.execute(lookup_sql, {"token_hash": hash_token(token)}, prepare=True)
            assert cur.fetchone() is not None

        def create_with_adapter(item: tuple[str, uuid.UUID]) -> None:
            auth.create_session(session_token=item[0], user_id=item[1], expires=expires)

        def create_by_hand(item: tuple[str, uuid.UUID]) -> None:
            params = {"token_hash": hash_token(item[0]), "user_id": item[1], "expires": expires}
            conn.execute(insert_sql, params, prepare=True).fetchone()

        def use_with_adapter(item: tuple[str, str]) -> None:
            assert auth.use_verification_token(item[0], item[1]) is not None

        def use_by_hand(item: tuple[str, str]) -> None:
            params = {"identifier": item[0], "token_hash": hash_token(item[1])}
            assert conn.execute(delete_sql, params, prepare=True).fetchone() is not None

        results: dict[str, list[tuple[float, float]]] = {"lookup": [], "create": [], "use": []}
        for _ in range(ROUNDS):
            sample = rng.sample(tokens, LOOKUPS_PER_ROUND)
            results["lookup"].append(duel(sample, sample, lookup_with_adapter, lookup_by_hand))

        # Writes commit once per call; without fsync waits (which only add disk noise
        # on a shared machine) the figures compare the statement paths themselves.
        bench_sql.no_fsync_wait.exec(conn)
        for round_ in range(ROUNDS):
            new = [
                (f"new-{round_}-{i}-{uuid.uuid4().hex}", rng.choice(user_ids))
                for i in range(2 * WRITES_PER_ROUND)
            ]
            results["create"].append(duel(new[::2], new[1::2], create_with_adapter, create_by_hand))
            vts = [
                (f"user{i}@bench.example", f"vt-{round_}-{i}-{uuid.uuid4().hex}")
                for i in range(2 * WRITES_PER_ROUND)
            ]
            with bench_sql.copy_verification_tokens.copy(conn) as copy:
                for identifier, token in vts:
                    copy.write_row((identifier, hash_token(token), expires))
            results["use"].append(duel(vts[::2], vts[1::2], use_with_adapter, use_by_hand))

        print(f"medians of {ROUNDS} rounds on one autocommit connection")
        ratio = compare("get_session_and_user", results["lookup"], TARGET)
        compare("create_session", results["create"], None)
        compare("use_verification_token", results["use"], None)
        print("(writes measured with synchronous_commit = off)")
        logins_met = logins(conn, auth)
    return 0 if ratio >= TARGET and logins_met else 1


if __name__ == "__main__":
    sys.exit(main())
