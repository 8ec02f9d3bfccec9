"""A Prisma-made Trampolin database for the adoption tests, and ways to compare databases.

``build_prisma_db(url)`` makes the app's schema (tests/sql/adopt_prisma.sql) in
an empty database and fills it: thousands of users, OAuth accounts, live and
expired sessions, verification tokens, CSV uploads (with one made by hand:
unicode, quotes, empty strings, embedded newlines), optionally password
hashes made by Node's bcrypt (tests/data/prisma/bcrypt_hashes.json) and the
business tables (subscriptions with usage, searches, analyses, refunds, and
the odd cases in ODD_ANALYSES and EXPIRED_TRIAL). ``add_conflicts`` adds the
rows adoption must refuse.
``snapshot(url)`` fingerprints every schema, table, type and row.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support import shared_server
from trampolin import queries

DATA = Path(__file__).parent / "data" / "prisma"
_fixture = queries.load_file(Path(__file__).parent / "sql" / "adopt_prisma.sql")
_checks = queries.load_file(Path(__file__).parent / "sql" / "adopt_checks.sql")

#: The hand-made upload: headers and rows as the app stored them (None: an empty cell).
ODD_UPLOAD_ID = "cmodduploadquotesnewlines"
ODD_HEADERS = ["Name", 'say "hi"', "e-mail, work", "Ünïcødé 名前", "notes"]
ODD_ROWS: list[dict[str, Any]] = [
    {
        "Name": "Ann",
        'say "hi"': 'she said "hi"',
        "e-mail, work": "ann@example.com",
        "Ünïcødé 名前": "日本語 🙂",
        "notes": "line one\nline two",
    },
    {
        "Name": "",
        'say "hi"': None,
        "e-mail, work": "  padded  ",
        "Ünïcødé 名前": "a,b;c\td",
        "notes": "crlf\r\nend",
    },
    {
        "Name": 42,
        'say "hi"': True,
        "e-mail, work": "'single'",
        "Ünïcødé 名前": "\\backslash\\",
        "notes": '""',
    },
    {"Name": "only a name"},  # missing keys: empty cells
]
#: The id of ODD_ROWS[i] is ODD_ROW_ID % i.
ODD_ROW_ID = "cmoddrow%017d"
#: What csv_rows / the export hold for ODD_ROWS, in ODD_HEADERS order.
ODD_VALUES = [
    ["Ann", 'she said "hi"', "ann@example.com", "日本語 🙂", "line one\nline two"],
    ["", "", "  padded  ", "a,b;c\td", "crlf\r\nend"],
    ["42", "true", "'single'", "\\backslash\\", '""'],
    ["only a name", "", "", "", ""],
]


#: Analyses made by hand for the first user: id -> (url as stored, status).
ODD_ANALYSES = {
    "cmoddanalysislocalhost000": ("localhost/test-page", "completed"),  # no host name: kept
    "cmoddanalysisprocessing00": ("Processing.example.com/x/", "processing"),
    "cmoddanalysisfailed000000": ("failed.example.com", "failed"),
}
#: The user add_conflicts gives the refused subscriptions, searches and analyses.
CONFLICT_SUBSCRIBER = "cmconflictsubscriber00000"
#: A sign-up trial (no Stripe subscription) that ended a day ago, of the second user.
EXPIRED_TRIAL = "cmoddexpiredsignuptrial00"


@dataclass(frozen=True)
class Built:
    """What build_prisma_db made, for the tests to check against."""

    users: int
    hashes: list[dict[str, Any]]


@contextmanager
def prisma_template(**options: Any) -> Iterator[str]:
    """A database holding the app's Prisma tables, to copy (``database_copy``), then dropped.

    ``options`` go to build_prisma_db; by default every kind of row is there.
    """
    server = shared_server()
    name = f"adopt_template_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    server.create_database(name)
    try:
        build_prisma_db(server.url(name), **{"passwords": True, "business": True, **options})
        yield name
    finally:
        server.drop_database(name)


@contextmanager
def database_copy(template: str) -> Iterator[str]:
    """The URL of a new copy of the template database, dropped afterwards."""
    server = shared_server()
    name = f"adopt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        _checks.create_database_from.exec(
            conn, identifiers={"database": name, "template": template}
        )
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


def node_hashes() -> list[dict[str, Any]]:
    """The bcrypt hashes Node made (password, cost, hash)."""
    entries: list[dict[str, Any]] = json.loads((DATA / "bcrypt_hashes.json").read_text())["entries"]
    return entries


def build_prisma_db(
    url: str,
    *,
    users: int = 2000,
    rows_per_upload: int = 12,
    passwords: bool = False,
    business: bool = False,
) -> Built:
    """Make the app's schema in the empty database at ``url`` and fill it."""
    hashes = node_hashes()
    with psycopg.connect(url, autocommit=True) as conn:
        _fixture.create_app_schema.exec(conn)
        _fixture.record_migrations.exec(conn)
        _fixture.insert_roles.exec(conn)
        _fixture.insert_users.exec(
            conn, users=users, with_passwords=passwords, hashes=[h["hash"] for h in hashes]
        )
        _fixture.insert_accounts.exec(conn)
        _fixture.insert_sessions.exec(conn)
        _fixture.insert_verification_tokens.exec(conn)
        _fixture.insert_csv_uploads.exec(conn, rows_per_upload=rows_per_upload)
        _fixture.insert_csv_rows.exec(conn, rows_per_upload=rows_per_upload)
        _insert_odd_upload(conn)
        _fixture.insert_ads.exec(conn)
        if business:
            _fixture.insert_subscriptions.exec(conn)
            _fixture.insert_searches_and_analyses.exec(conn)
            _fixture.insert_rerun_searches.exec(conn)
            _fixture.insert_refunds.exec(conn, refunds=25)
            _insert_odd_business(conn)
    return Built(users=users, hashes=hashes)


def first_user_id(conn: psycopg.Connection[Any], n: int = 1) -> str:
    """The n-th user of the app's table, by id."""
    row = _checks.prisma_user.one(conn, n=n)
    assert row is not None
    return str(row["id"])


def _insert_odd_business(conn: psycopg.Connection[Any]) -> None:
    created = datetime(2025, 9, 5, 10, 11, 12, 345000)
    for analysis_id, (url, status) in ODD_ANALYSES.items():
        results = Jsonb({"url": url, "totalReach": 5}) if status == "completed" else None
        _fixture.insert_analysis.exec(
            conn,
            id=analysis_id,
            user_id=first_user_id(conn),
            url=url,
            status=status,
            results=results,
            created_at=created,
            search_id=None,
        )
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    _fixture.insert_subscription.exec(
        conn,
        id=EXPIRED_TRIAL,
        user_id=first_user_id(conn, 2),
        customer_id="cus_oddexpiredtrial",
        stripe_id=None,
        status="trialing",
        start=now - timedelta(days=8),
        used=0,
        trial_used=3,
    )


def _insert_odd_upload(conn: psycopg.Connection[Any]) -> None:
    created = datetime(2025, 9, 5, 10, 11, 12, 345000)  # naive: TIMESTAMP(3) holds UTC
    _fixture.insert_upload.exec(
        conn,
        id=ODD_UPLOAD_ID,
        user_id=first_user_id(conn),
        filename="odd_1757067072345_x1y2z3.csv",
        original_name="odd “quotes”, newlines.csv",
        file_size=321,
        status="completed",
        total_rows=len(ODD_ROWS),
        error_message=None,
        headers=ODD_HEADERS,
        created_at=created,
    )
    # Stored out of order, as concurrent batches could: rowIndex decides.
    for index in reversed(range(len(ODD_ROWS))):
        _fixture.insert_row.exec(
            conn,
            id=ODD_ROW_ID % index,
            upload_id=ODD_UPLOAD_ID,
            row_index=index,
            data=Jsonb(ODD_ROWS[index]),
            created_at=created,
        )


def add_conflicts(url: str) -> dict[str, str]:
    """Rows adoption must refuse; the id of each, by what is wrong with it."""
    created = datetime(2025, 9, 6, 8, 0, 0, 1000)
    ids = {
        "no_email": "cmconflictnoemail00000001",
        "case_a": "cmconflictcaseaaaaaaaaaaa",
        "case_b": "cmconflictcasebbbbbbbbbbb",
        "bad_role": "cmconflictbadrole00000001",
        "not_object": "cmconflictnotobject000001",
        "extra_keys": "cmconflictextrakeys000001",
        "orphan_row": "cmconflictorphanrow000001",
        "orphan_session": "cmconflictorphansession01",
        "row_index_again": "cmconflictrowindexagain01",
        **_business_conflict_ids(),
    }
    with psycopg.connect(url, autocommit=True) as conn:
        _fixture.insert_user.exec(
            conn, id=ids["no_email"], name="No Mail", email=None, created_at=created, role_id=None
        )
        for key, email in (("case_a", "Twin@Example.com"), ("case_b", "twin@example.COM")):
            _fixture.insert_user.exec(
                conn, id=ids[key], name="Twin", email=email, created_at=created, role_id=None
            )
        _fixture.insert_role.exec(conn, id=ids["bad_role"], name="Super Admin", created_at=created)
        for key, index, data in (
            ("not_object", 98, Jsonb(["a", "b"])),
            ("extra_keys", 99, Jsonb({"zzz": "1"})),
            ("row_index_again", 0, Jsonb({"Name": "again"})),  # the app numbered rows once
        ):
            _fixture.insert_row.exec(
                conn,
                id=ids[key],
                upload_id=ODD_UPLOAD_ID,
                row_index=index,
                data=data,
                created_at=created,
            )
        _fixture.drop_foreign_key.exec(
            conn, identifiers={"table": "CsvRow", "constraint": "CsvRow_uploadId_fkey"}
        )
        _fixture.insert_row.exec(
            conn,
            id=ids["orphan_row"],
            upload_id="cmnosuchupload00000000000",
            row_index=0,
            data=Jsonb({}),
            created_at=created,
        )
        _fixture.drop_foreign_key.exec(
            conn, identifiers={"table": "Session", "constraint": "Session_userId_fkey"}
        )
        _checks.insert_orphan_session.exec(conn, id=ids["orphan_session"], expires=created)
        _add_business_conflicts(conn, ids, created)
    return ids


def _business_conflict_ids() -> dict[str, str]:
    names = (
        "argon_hash plain_hash signup_a signup_b negative_usage orphan_subscription "
        "dup_a dup_b empty_url odd_status bad_search foreign_analysis orphan_analysis refund"
    )
    return {name: f"cmconflict{name.replace('_', '')}".ljust(25, "0") for name in names.split()}


def _add_business_conflicts(
    conn: psycopg.Connection[Any], ids: dict[str, str], created: datetime
) -> None:
    """Hashes, subscriptions, searches, analyses and a refund that adoption refuses."""
    for user_id, email in (
        (ids["argon_hash"], "argon@example.com"),
        (ids["plain_hash"], "plain@example.com"),
        (CONFLICT_SUBSCRIBER, "subscriber@example.com"),  # a user adoption takes; its rows not
    ):
        _fixture.insert_user.exec(
            conn, id=user_id, name="Conflicts", email=email, created_at=created, role_id=None
        )
    _fixture.set_password_hash.exec(
        conn, id=ids["argon_hash"], hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
    )
    _fixture.set_password_hash.exec(conn, id=ids["plain_hash"], hash="hunter2")
    subscriber = CONFLICT_SUBSCRIBER
    for key, used in (("signup_a", 0), ("signup_b", 0), ("negative_usage", -1)):
        _fixture.insert_subscription.exec(
            conn,
            id=ids[key],
            user_id=subscriber,
            customer_id=f"cus_{ids[key]}",
            stripe_id=None if key != "negative_usage" else f"sub_{ids[key]}",
            status="trialing" if key != "negative_usage" else "active",
            start=created,
            used=used,
            trial_used=0,
        )
    _fixture.drop_foreign_key.exec(
        conn, identifiers={"table": "Subscription", "constraint": "Subscription_userId_fkey"}
    )
    _fixture.insert_subscription.exec(
        conn,
        id=ids["orphan_subscription"],
        user_id="cmnosuchuser0000000000000",
        customer_id="cus_orphan",
        stripe_id=None,
        status="active",
        start=created,
        used=0,
        trial_used=0,
    )
    _fixture.insert_search.exec(
        conn,
        id=ids["bad_search"],
        user_id=subscriber,
        status="running",
        url_count=0,
        created_at=created,
    )
    _fixture.drop_foreign_key.exec(
        conn, identifiers={"table": "UrlAnalysis", "constraint": "UrlAnalysis_searchId_fkey"}
    )
    analyses = (
        ("dup_a", subscriber, "Dup.example.com/a", "completed", None),
        ("dup_b", subscriber, "dup.example.com/a/", "completed", None),
        ("empty_url", subscriber, "", "pending", None),
        ("odd_status", subscriber, "odd.example.com", "queued", None),
        ("foreign_analysis", first_user_id(conn), "foreign.example.com", "completed", "bad_search"),
        ("orphan_analysis", subscriber, "orphan.example.com", "completed", "no_search"),
    )
    for key, user_id, url, status, search in analyses:
        _fixture.insert_analysis.exec(
            conn,
            id=ids[key],
            user_id=user_id,
            url=url,
            status=status,
            results=None,
            created_at=created,
            search_id=None if search is None else ids.get(search, "cmnosuchsearch00000000000"),
        )
    _fixture.insert_refund.exec(
        conn,
        id=ids["refund"],
        amount=-5,
        currency="US$",
        status="weird",
        admin_id=first_user_id(conn),
        created_at=created,
    )


def snapshot(url: str) -> dict[str, str]:
    """Every schema, table, column, type, constraint and index, and each table's rows, hashed."""
    with psycopg.connect(url, autocommit=True) as conn:
        result = {"catalog": str(_checks.catalog.one(conn))}
        for row in _checks.user_tables.many(conn):
            name = f'{row["schema_name"]}."{row["table_name"]}"'
            with _checks.table_digest.copy(
                conn, identifiers={"schema": row["schema_name"], "table": row["table_name"]}
            ) as copy:
                result[name] = b"".join(bytes(chunk) for chunk in copy).decode()
    return result


def utc(naive: datetime) -> datetime:
    """A TIMESTAMP(3) value as the instant it holds."""
    return naive.replace(tzinfo=UTC)


LATER = timedelta(days=1)
