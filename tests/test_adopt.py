"""`trampolin adopt prisma` on a Prisma-made Trampolin database (tests/adopt_support.py).

The fixture is built once per module into a template database; each test
gets its own copy. Promises are checked through the public API (AuthAdapter,
CsvUploads, the CLI as a real subprocess), and "changes nothing" by a digest
of every schema object and every table's rows.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.adopt_support import (
    ODD_HEADERS,
    ODD_ROW_ID,
    ODD_UPLOAD_ID,
    ODD_VALUES,
    add_conflicts,
    database_copy,
    prisma_template,
    snapshot,
    utc,
)
from tests.support import ROOT, run_cli
from trampolin import adopt, queries
from trampolin.adopt_plan import PRISMA_TABLES, Report
from trampolin.auth import AuthAdapter
from trampolin.csv_uploads import CsvUploads
from trampolin.db import connect
from trampolin.errors import AdoptionRefused, MigrationError
from trampolin.migrations import LOCK_KEY, Migrator, apply_within
from trampolin.usage import Usage
from trampolin.values import legacy_uuid, user_key

checks = queries.load_file(Path(__file__).parent / "sql" / "adopt_checks.sql")
admin = queries.load("admin")

APP_TABLES = sorted(t.name for t in PRISMA_TABLES)


# -- Fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> Iterator[str]:
    """The module's Prisma database, built once (copied by ``prisma_url``)."""
    with prisma_template() as name:
        yield name


@pytest.fixture
def prisma_url(template: str) -> Iterator[str]:
    """URL of this test's own copy of the Prisma database."""
    with database_copy(template) as url:
        yield url


@pytest.fixture
def before(prisma_url: str) -> dict[str, str]:
    return snapshot(prisma_url)


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("--database-url", url, "adopt", "prisma", *args)


# -- The id decision: SQL and Python derive the same UUID ------------------------


SAMPLE_IDS = [
    "cm0abcdefghijklmnopqrstuv",
    "clkj1234567890abcdef",
    "c" + "z" * 24,
    "",
    " ",
    "ünïcødé-名前-🙂",
    "x" * 1000,
    "a'b\"c\\d",
    "0123456789abcdef0123456789ABCDEF",
    "01234567-89ab-cdef-0123-456789abcdef",
    "{01234567-89ab-cdef-0123-456789abcdef}",
    "urn:uuid:01234567-89ab-cdef-0123-456789abcdef",
    "0123456789abcdef0123456789abcde",  # 31 digits
    "line\nbreak",
]


def migrate_beside_prisma(url: str) -> None:
    """trampolin's empty tables beside the app's (Migrator.apply refuses to make them now)."""
    with connect(url, autocommit=True) as conn, conn.transaction():
        apply_within(conn)


def test_legacy_uuid_is_the_same_in_sql_and_python(conn: psycopg.Connection[Any]) -> None:
    rows = checks.legacy_uuids.many(conn, ids=SAMPLE_IDS)
    assert {r["legacy_id"]: r["id"] for r in rows} == {s: legacy_uuid(s) for s in SAMPLE_IDS}
    for sample in SAMPLE_IDS:
        if not sample.startswith(("{", "urn:")):  # written like a UUID only in odd ways
            assert user_key(sample) == legacy_uuid(sample), sample


# -- Dry run ----------------------------------------------------------------------


def test_dry_run_changes_nothing_and_says_where_every_table_goes(
    prisma_url: str, before: dict[str, str]
) -> None:
    shown = cli(prisma_url, "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert "dry run: adoptable" in shown.stdout
    assert '"CsvRow"' in shown.stdout
    assert "-> csv_rows" in shown.stdout
    as_json = cli(prisma_url, "--dry-run", "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert sorted(report["tables"]) == APP_TABLES
    assert report["tables"]["User"] == {"rows": 2000, "into": "users"}
    assert report["skipped"] == []
    assert report["adoptable"] is True
    assert {p["price_id"]: p["monthly_limit"] for p in report["plans"]} == {
        "price_1S2Sa1BDgh9JKNMfPQca2Ozk": 500,
        "price_1S2Sa2BDgh9JKNMfXr6YEVMx": 1000,
        "price_1S2Sa3BDgh9JKNMfqNoy03Sg": 2500,
    }
    assert "compare with the app's PLAN_LIMITS" in shown.stdout
    assert snapshot(prisma_url) == before


# -- Adoption -------------------------------------------------------------------


@pytest.fixture
def adopted(prisma_url: str, before: dict[str, str]) -> dict[str, str]:
    """Adopt through the CLI; ``before`` as it was."""
    done = cli(prisma_url, "--yes")
    assert done.returncode == 0, done.stderr
    assert "adopted: every row above" in done.stdout
    return before


def test_users_keep_ids_emails_roles_and_times(prisma_url: str, adopted: dict[str, str]) -> None:
    with connect(prisma_url, autocommit=True) as conn:
        rows = checks.adopted_users.many(conn)
        auth = AuthAdapter(conn)
        assert len(rows) == 2000
        for row in rows:
            assert row["id"] == legacy_uuid(row["old_id"])
            assert row["legacy_id"] == row["old_id"]
            assert (row["email"], row["name"], row["image"], row["role"]) == (
                row["old_email"],
                row["old_name"],
                row["old_image"],
                row["old_role"],
            )
            assert row["stripe_customer_id"] == row["old_stripe_customer_id"]
            assert row["created_at"] == utc(row["old_created_at"])
            assert row["updated_at"] == utc(row["old_updated_at"])
            verified = row["old_email_verified"]
            assert row["email_verified"] == (utc(verified) if verified else None)
            # The JWT "sub", Stripe metadata.user_id, links: the cuid finds the user.
            user = auth.get_user(row["old_id"])
            assert user is not None
            assert user.id == row["id"]
            assert user.email == row["email"]
        mixed = next(r["email"] for r in rows if r["email"] != r["email"].lower())
        found = auth.get_user_by_email(mixed.swapcase())
        assert found is not None
        assert found.email == mixed


def test_sessions_and_verification_tokens_work_with_the_tokens_users_hold(
    prisma_url: str, adopted: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    with connect(prisma_url, autocommit=True) as conn:
        auth = AuthAdapter(conn)
        sessions = checks.archived_sessions.many(conn)
        assert {utc(s["expires"]) > now for s in sessions} == {True, False}
        for old in sessions:
            found = auth.get_session_and_user(old["token"])
            if utc(old["expires"]) > now:
                assert found is not None
                session, user = found
                assert user.id == legacy_uuid(old["user_id"])
                assert session.expires == utc(old["expires"])
            else:
                assert found is None  # expired: and deleted by that read
        tokens = checks.archived_verification_tokens.many(conn)
        assert {utc(t["expires"]) > now for t in tokens} == {True, False}
        for old in tokens:
            used = auth.use_verification_token(old["identifier"], old["token"])
            if utc(old["expires"]) > now:
                assert used is not None
                assert used.expires == utc(old["expires"])
                assert auth.use_verification_token(old["identifier"], old["token"]) is None
            else:
                assert used is None


def test_accounts_keep_their_oauth_tokens(prisma_url: str, adopted: dict[str, str]) -> None:
    with connect(prisma_url, autocommit=True) as conn:
        auth = AuthAdapter(conn)
        accounts = checks.archived_accounts.many(conn)
        assert {a["provider"] for a in accounts} == {"google", "github"}
        for old in accounts:
            user = auth.get_user_by_account(old["provider"], old["provider_account_id"])
            assert user is not None
            assert user.id == legacy_uuid(old["user_id"])
        target = checks.adopted_accounts.many(conn)
        assert [dict(a, user_id=legacy_uuid(a["user_id"])) for a in accounts] == target


def test_csv_uploads_keep_status_sizes_errors_times_and_values(
    prisma_url: str, adopted: dict[str, str]
) -> None:
    with connect(prisma_url, autocommit=True) as conn:
        uploads = CsvUploads(conn)
        archived = checks.archived_uploads.many(conn)
        statuses = set()
        for old in archived:
            upload = uploads.get(_upload_id(conn, old["id"]))
            assert upload is not None
            statuses.add(upload.status)
            assert upload.user_id == legacy_uuid(old["user_id"])
            assert (upload.filename, upload.status, upload.file_size, upload.error_message) == (
                old["original_name"],
                old["status"],
                old["file_size"],
                old["error_message"],
            )
            assert upload.headers == tuple(old["headers"] or ())
            assert upload.total_rows == old["row_count"]
            assert (upload.created_at, upload.updated_at) == (
                utc(old["created_at"]),
                utc(old["updated_at"]),
            )
            expected = [
                [_cell(row["data"].get(h)) for h in upload.headers]
                for row in checks.archived_rows_of.many(conn, upload_id=old["id"])
            ]
            assert [list(r.data.values()) for r in uploads.rows(upload.id, limit=10_000)] == (
                expected
            )
            if upload.status == "completed":
                out = io.BytesIO()
                assert uploads.export_csv(upload.id, out) == len(expected)
                parsed = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))
                assert parsed == [list(upload.headers), *expected]
        assert statuses == {"pending", "processing", "completed", "failed"}


@pytest.mark.parametrize("by", ["number", "app id"])
def test_csv_export_of_the_odd_upload_gives_the_original_values(
    prisma_url: str, adopted: dict[str, str], tmp_path: Path, by: str
) -> None:
    target = tmp_path / "odd.csv"
    upload_id = _odd_id(prisma_url) if by == "number" else ODD_UPLOAD_ID
    exported = run_cli("--database-url", prisma_url, "csv", "export", upload_id, "-o", str(target))
    assert exported.returncode == 0, exported.stderr
    parsed = list(csv.reader(io.StringIO(target.read_bytes().decode(), newline="")))
    assert parsed == [ODD_HEADERS, *ODD_VALUES]
    shown = run_cli("--database-url", prisma_url, "csv", "show", upload_id, "--rows", "0")
    assert shown.returncode == 0, shown.stderr
    assert f"upload:   {_odd_id(prisma_url)}\n" in shown.stdout


def test_an_adopted_upload_is_deleted_by_the_apps_id(prisma_url: str) -> None:
    adopt.adopt_database(prisma_url)
    number = _odd_id(prisma_url)
    deleted = run_cli("--database-url", prisma_url, "csv", "delete", ODD_UPLOAD_ID, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.startswith(f"deleted upload {number} ")
    with connect(prisma_url, autocommit=True) as conn:
        assert CsvUploads(conn).get(ODD_UPLOAD_ID) is None


def _cell(value: object) -> str:
    """A data value as trampolin holds it: null is empty, other non-strings their JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _odd_id(url: str) -> str:
    with connect(url, autocommit=True) as conn:
        return str(_upload_id(conn, ODD_UPLOAD_ID))


def _upload_id(conn: psycopg.Connection[Any], legacy_id: str) -> int:
    row = checks.upload_by_legacy_id.one(conn, legacy_id=legacy_id)
    assert row is not None
    return int(row["id"])


def test_archive_holds_every_app_table_as_it_was(prisma_url: str, adopted: dict[str, str]) -> None:
    after = snapshot(prisma_url)
    with connect(prisma_url, autocommit=True) as conn:
        assert [r["name"] for r in checks.archived_tables.many(conn)] == sorted(
            [*APP_TABLES, "_trampolin_adoption"]
        )
        assert [r["name"] for r in checks.archived_types.many(conn)] == [
            "CsvUploadStatus",
            "SubscriptionStatus",
        ]
        public = {r["name"] for r in checks.public_relations.many(conn)}
    assert not public & set(APP_TABLES)
    for name in APP_TABLES:
        assert after[f'prisma_archive."{name}"'] == adopted[f'public."{name}"'], name
    assert after['public."ads"'] == adopted['public."ads"']  # not the app's: untouched


def test_migrate_status_is_clean_and_a_rerun_changes_nothing(
    prisma_url: str, adopted: dict[str, str]
) -> None:
    assert {s.state for s in Migrator(prisma_url).status()} == {"applied"}
    status = run_cli("--database-url", prisma_url, "migrate", "status")
    assert status.returncode == 0, status.stderr
    done = snapshot(prisma_url)
    again = cli(prisma_url, "--yes")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("already adopted on ")
    assert snapshot(prisma_url) == done
    as_json = json.loads(cli(prisma_url, "--dry-run", "--json").stdout)
    assert as_json["state"] == "already adopted"
    assert as_json["tables"]["CsvRow"]["into"] == "csv_rows"


def test_new_users_and_new_migrations_after_adoption(
    prisma_url: str, adopted: dict[str, str]
) -> None:
    with connect(prisma_url, autocommit=True) as conn:
        auth = AuthAdapter(conn)
        new = auth.create_user(email="new@example.com")
        assert new.id.version == 4
        assert auth.get_user(str(new.id)) == new
        assert auth.get_user("cmnosuchuser0000000000000") is None


# -- Refusals: the database is left as it was -----------------------------------


def test_conflicting_database_is_refused_naming_the_rows(
    prisma_url: str,
) -> None:
    ids = add_conflicts(prisma_url)
    before = snapshot(prisma_url)
    shown = cli(prisma_url, "--dry-run")
    assert shown.returncode == 1, shown.stderr
    for row_id in ids.values():
        assert row_id in shown.stdout, row_id
    assert "has no e-mail" in shown.stdout
    assert "differs from another user's only in case" in shown.stdout
    assert "data is not a JSON object" in shown.stdout
    assert "keys that are not among the upload's headers: upload cmodd" in shown.stdout
    assert 'references a missing "CsvUpload"' in shown.stdout
    assert "rowIndex is negative, or another row of its upload has it too" in shown.stdout
    assert 'references a missing "User"' in shown.stdout
    assert "not a trampolin role name" in shown.stdout
    for reason in (
        "passwordHash is not a bcrypt hash trampolin verifies",
        "it begins $argon2id$",
        "its user has another subscription without stripeSubscriptionId",
        "usedThisMonth -1",
        "the same user and URL as another analysis, once normalized: dup.example.com/a: ",
        "url is empty or longer than 2048 characters",
        "status is not pending, processing, completed or failed: queued",
        "status is not pending, completed or failed: running",
        "urlCount is not positive, or below the analyses that name the search",
        "belongs to another user than its search",
        'references a missing "Search"',
        "amount is negative: -5",
        "currency is not a three-letter ISO code: US$",
        "status is not a Stripe refund status: weird",
    ):
        assert reason in shown.stdout, reason
    assert "hunter2" not in shown.stdout  # a password hash (or a password) is never shown
    report = json.loads(cli(prisma_url, "--dry-run", "--json").stdout)
    assert {s["id"] for s in report["skipped"]} >= set(ids.values())
    refused = cli(prisma_url, "--yes")
    assert refused.returncode == 1
    assert "not adoptable" in refused.stdout
    assert snapshot(prisma_url) == before


def test_a_csv_row_refused_inside_the_adoption_rolls_everything_back(prisma_url: str) -> None:
    """The move itself finds bad CsvRow data (no separate pass): still nothing changes."""
    ids = add_conflicts(prisma_url)
    with psycopg.connect(prisma_url, autocommit=True) as conn:
        checks.keep_only_csv_row_conflicts.exec(conn, ids=list(ids.values()))
    before = snapshot(prisma_url)
    with pytest.raises(AdoptionRefused) as caught:
        adopt.adopt_database(prisma_url)
    report = caught.value.report
    assert isinstance(report, Report)
    assert {s.id for s in report.skipped} == {
        ids["not_object"],
        ids["extra_keys"],
        ids["orphan_row"],
        ids["row_index_again"],
        ODD_ROW_ID % 0,  # the row whose rowIndex it repeats
    }
    assert snapshot(prisma_url) == before


def test_a_database_without_the_production_scripts_search_table_is_adopted(
    prisma_url: str,
) -> None:
    with psycopg.connect(prisma_url, autocommit=True) as conn:
        checks.break_no_search.exec(conn)  # as before the hand-written production script
    before = snapshot(prisma_url)
    done = cli(prisma_url, "--yes", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "Search" not in report["tables"]
    assert report["tables"]["UrlAnalysis"]["into"] == "url_analyses"
    assert "search_analyses" not in report["derived"]
    after = snapshot(prisma_url)
    for name in set(APP_TABLES) - {"Search"}:
        assert after[f'prisma_archive."{name}"'] == before[f'public."{name}"'], name


def test_trampolin_tables_must_be_empty(prisma_url: str) -> None:
    migrate_beside_prisma(prisma_url)  # what `trampolin migrate` did before it refused to
    assert cli(prisma_url, "--dry-run").returncode == 0  # empty tables beside: fine
    with connect(prisma_url, autocommit=True) as conn:
        AuthAdapter(conn).create_user(email="someone@example.com")
    before = snapshot(prisma_url)
    refused = cli(prisma_url, "--yes")
    assert refused.returncode == 1
    assert "users (1 rows): trampolin's table already holds rows" in refused.stdout
    assert snapshot(prisma_url) == before


def test_a_plan_trampolin_has_is_kept_and_the_others_come_from_the_apps_rows(
    prisma_url: str,
) -> None:
    migrate_beside_prisma(prisma_url)
    gold = "price_1S2Sa3BDgh9JKNMfqNoy03Sg"
    with connect(prisma_url, autocommit=True) as conn:
        Usage(conn).set_plan_limit(gold, 3000, trial_limit=20)
    done = adopt.adopt_database(prisma_url)
    assert {d.into: d.rows for d in done.derived}["plans"] == 2  # gold was there
    with connect(prisma_url, autocommit=True) as conn:
        plans = {p.price_id: (p.monthly_limit, p.trial_limit) for p in Usage(conn).plans()}
    assert plans == {
        "default": (500, 10),
        "price_1S2Sa1BDgh9JKNMfPQca2Ozk": (500, 10),
        "price_1S2Sa2BDgh9JKNMfXr6YEVMx": (1000, 10),
        gold: (3000, 20),
    }


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "not a Prisma-made database: schema public has no _prisma_migrations"),
        ("trampolin", "not a Prisma-made database"),
        ("no_csv_row", 'not the Trampolin app\'s: no table "CsvRow"'),
        ("timestamptz", '"User"."createdAt" is timestamp(3) with time zone'),
        ("unfinished", "Prisma migration 20250905000000_add_x did not finish"),
        ("archive_exists", "schema prisma_archive already exists"),
    ],
)
def test_anything_else_is_refused_in_one_line(
    setup: str, message: str, prisma_url: str, empty_db_url: str, db_url: str
) -> None:
    url = {"empty": empty_db_url, "trampolin": db_url}.get(setup, prisma_url)
    if url == prisma_url:
        with psycopg.connect(url, autocommit=True) as conn:
            getattr(checks, f"break_{setup}").exec(conn)
    before = snapshot(url)
    for args in (["--dry-run"], ["--yes"]):
        result = cli(url, *args)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith("error: ")
        assert message in result.stderr
    assert snapshot(url) == before


def test_the_app_still_using_its_tables_is_refused(prisma_url: str) -> None:
    before = snapshot(prisma_url)
    with psycopg.connect(prisma_url) as app:
        checks.lock_user_table.exec(app)  # a transaction of the app, left open
        with pytest.raises(AdoptionRefused, match="the app's tables are in use"):
            adopt.adopt_database(prisma_url, lock_timeout="200ms")
        app.rollback()
    assert snapshot(prisma_url) == before


# -- One transaction: the caller's, or none at all -------------------------------


def test_adopt_inside_the_callers_transaction(prisma_url: str, before: dict[str, str]) -> None:
    with connect(prisma_url) as conn:
        assert adopt.plan(conn).adoptable  # its temporary table is reused by adopt() below
        report = adopt.adopt(conn)
        assert report.state == "adopted"
        conn.rollback()
    assert snapshot(prisma_url) == before
    with connect(prisma_url) as conn:
        adopt.adopt(conn)
        conn.commit()
    assert adopt.dry_run(prisma_url).state == "already adopted"


def test_apply_within_needs_a_transaction_and_the_lock(db_url: str, empty_db_url: str) -> None:
    with connect(empty_db_url, autocommit=True) as conn, pytest.raises(MigrationError):
        apply_within(conn)
    with connect(empty_db_url) as holder, connect(empty_db_url) as conn:
        checks.hold_migration_lock.one(holder, key=LOCK_KEY)
        checks.hold_nothing.one(conn)
        with pytest.raises(MigrationError, match="another trampolin migrate is running"):
            apply_within(conn)
    with connect(empty_db_url) as conn:
        checks.hold_nothing.one(conn)
        assert len(apply_within(conn)) == len(Migrator(empty_db_url).status())
        conn.rollback()
    assert {s.state for s in Migrator(empty_db_url).status()} == {"pending"}


def test_kill_9_mid_adoption_leaves_the_database_as_it_was(prisma_url: str) -> None:
    """The CLI is killed while it waits to write csv_rows, after every other table moved."""
    migrate_beside_prisma(prisma_url)  # so that csv_rows exists to be locked
    before = snapshot(prisma_url)
    with psycopg.connect(prisma_url) as blocker:
        checks.block_csv_rows.exec(blocker)  # SHARE: the adoption's INSERT waits
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trampolin",
                "--database-url",
                prisma_url,
                "adopt",
                "prisma",
                "--yes",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for(lambda: checks.waiting_on_csv_rows.one(blocker) is not None)
            moved = child.stderr.readline() if child.stderr else ""
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        blocker.rollback()
        assert moved  # it had started moving rows
    with psycopg.connect(prisma_url, autocommit=True) as conn:
        _wait_for(lambda: checks.backend_gone.one(conn)["others"] == 0)  # type: ignore[index]
    assert snapshot(prisma_url) == before


def _wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_rolling_back_from_the_archive_gives_the_app_its_tables_back(
    prisma_url: str, adopted: dict[str, str]
) -> None:
    with psycopg.connect(prisma_url) as conn:  # one transaction, as docs/adopt.md says
        checks.roll_back_from_archive.exec(conn)
    after = snapshot(prisma_url)
    for name in APP_TABLES:
        assert after[f'public."{name}"'] == adopted[f'public."{name}"'], name
    assert cli(prisma_url, "--dry-run").returncode == 1  # trampolin's copies are still there


def test_the_cli_asks_first_and_json_reports_the_adoption(prisma_url: str) -> None:
    before = snapshot(prisma_url)
    declined = subprocess.run(
        [sys.executable, "-m", "trampolin", "--database-url", prisma_url, "adopt", "prisma"],
        input="n\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert declined.returncode == 1
    assert "adopt the Prisma database" in declined.stderr
    assert '"User"' in declined.stderr  # the plan, shown before the question
    assert snapshot(prisma_url) == before
    accepted = subprocess.run(
        [
            sys.executable,
            "-m",
            "trampolin",
            "--database-url",
            prisma_url,
            "adopt",
            "prisma",
            "--json",
        ],
        input="y\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert accepted.returncode == 0, accepted.stderr
    report = json.loads(accepted.stdout)
    assert report["state"] == "adopted"
    assert report["tables"]["CsvRow"] == {"rows": 1824, "into": "csv_rows"}
