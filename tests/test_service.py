"""The example FastAPI service under a real uvicorn, driven over real HTTP with httpx.

One server (a subprocess on a free port) and one database for the module; each test
signs up users of its own. The web framework, the server and the client are dev
dependencies: the library itself never imports them (checked first).
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest

from tests.service_support import (
    ROOT,
    CsvBody,
    PeakRss,
    Service,
    checkout_event,
    signed,
    start_service,
    subscription_event,
)
from tests.support import shared_server
from trampolin import queries
from trampolin.db import connect
from trampolin.usage import Usage

WEB_PACKAGES = ("fastapi", "starlette", "uvicorn", "httpx", "pydantic")
PASSWORD = "correct horse battery"
BIG_UPLOAD = 50 * 1024 * 1024
RSS_GROWTH_BOUND = 20 * 1024 * 1024  # generous: the body is 50 MiB, the server holds ~1-2 MiB

_admin = queries.load("admin")


def test_the_library_needs_no_web_framework() -> None:
    modules = [
        "trampolin",
        "trampolin.auth",
        "trampolin.subscriptions",
        "trampolin.csv_uploads",
        "trampolin.usage",
        "trampolin.analyses",
        "trampolin.refunds",
        "trampolin.db",
        "trampolin.cli",
    ]
    probe = (
        f"import sys\nimport {', '.join(modules)}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {WEB_PACKAGES!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = " ".join(project["dependencies"])
    dev = " ".join(project["optional-dependencies"]["dev"])
    for package in ("fastapi", "uvicorn", "httpx"):
        assert package not in required
        assert package in dev


# -- the server and its database -------------------------------------------------


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A migrated, seeded database of the module's own."""
    from trampolin.migrations import Migrator
    from trampolin.seed import run_seed

    name = f"trampolin_service_{uuid.uuid4().hex[:12]}"
    shared_server().create_database(name)
    try:
        url = shared_server().url(name)
        Migrator(url).apply()
        run_seed(url)
        yield url
    finally:
        shared_server().drop_database(name)


@pytest.fixture(scope="module")
def service(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(database, tmp_path_factory.mktemp("service") / "uvicorn.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def db(database: str) -> Iterator[psycopg.Connection[Any]]:
    """The test's own connection to the service's database, for its checks."""
    with connect(database, autocommit=True) as conn:
        yield conn


def email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@contextmanager
def signed_up(service: Service, address: str | None = None) -> Iterator[httpx.Client]:
    """A client holding the session cookie of a new user."""
    with service.client() as client:
        answer = client.post("/signup", json={"email": address or email(), "password": PASSWORD})
        assert answer.status_code == 201, answer.text
        yield client


# -- sign-up, login, sessions ------------------------------------------------------


def test_signup_signs_in_with_an_http_only_cookie(service: Service) -> None:
    address = email()
    with service.client() as client:
        answer = client.post("/signup", json={"email": address, "password": PASSWORD})
        assert answer.status_code == 201
        assert answer.json()["email"] == address
        assert "password_hash" not in answer.json()
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("session=")
        assert "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        assert "secure" not in cookie.lower()  # plain HTTP here; HTTPS gets Secure
        assert client.get("/me").json()["email"] == address


def test_login_right_and_wrong(service: Service, db: psycopg.Connection[Any]) -> None:
    address = email()
    with signed_up(service, address):
        pass
    with service.client() as client:
        answer = client.post("/login", json={"email": address.upper(), "password": PASSWORD})
        assert answer.status_code == 200
        assert answer.json()["email"] == address
        token = client.cookies["session"]
        assert client.get("/me").status_code == 200
    sessions = db.execute(
        "SELECT count(*) FROM sessions JOIN users ON users.id = sessions.user_id "
        "WHERE users.email = %s",
        [address],
    ).fetchone()
    assert sessions == (2,)  # the sign-up's and the login's
    assert token.encode() not in b"".join(
        row[0] for row in db.execute("SELECT session_token_hash FROM sessions").fetchall()
    )
    with service.client() as client:
        wrong = client.post("/login", json={"email": address, "password": "not the password"})
        unknown = client.post("/login", json={"email": email(), "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json() == {"detail": "wrong e-mail or password"}
        assert "set-cookie" not in wrong.headers
        assert client.get("/me").status_code == 401


def test_signup_errors(service: Service) -> None:
    address = email()
    with signed_up(service, address):
        pass
    with service.client() as client:
        taken = client.post("/signup", json={"email": address.upper(), "password": PASSWORD})
        assert taken.status_code == 409
        assert address.upper() in taken.json()["detail"]
        short = client.post("/signup", json={"email": email(), "password": "short"})
        assert short.status_code == 422
        assert "too short" in short.json()["detail"]
        bad = client.post("/signup", json={"email": "not an address", "password": PASSWORD})
        assert bad.status_code == 422
        nul = client.post("/login", json={"email": email(), "password": "a\x00b"})
        assert nul.status_code == 422
        assert client.post("/signup", json={"email": email()}).status_code == 422
        assert "set-cookie" not in taken.headers
        assert client.get("/me").status_code == 401


def test_access_with_and_without_the_cookie(service: Service) -> None:
    with service.client() as anonymous:
        assert anonymous.get("/me").status_code == 401
        assert anonymous.get("/me", headers={"Cookie": "session=made-up"}).status_code == 401
        assert anonymous.post("/analyze").status_code == 401
        assert anonymous.post("/uploads", content=b"a\n1\n").status_code == 401
        assert anonymous.get("/uploads/1/csv").status_code == 401
    with signed_up(service) as client:
        token = client.cookies["session"]
        assert client.get("/me").status_code == 200
        answer = client.post("/logout")
        assert answer.status_code == 204
        assert "session=" in answer.headers["set-cookie"]  # cleared in the browser
        assert client.get("/me").status_code == 401
    with service.client() as replay:  # and ended in the database, not only in the browser
        assert replay.get("/me", headers={"Cookie": f"session={token}"}).status_code == 401
        assert replay.post("/logout").status_code == 204  # without a session: nothing to do


# -- Stripe ----------------------------------------------------------------------------


def user_id(client: httpx.Client) -> str:
    return str(client.get("/me").json()["id"])


def test_signed_webhook_links_the_customer(service: Service, db: psycopg.Connection[Any]) -> None:
    with signed_up(service) as client, service.client() as stripe:
        customer = f"cus_{uuid.uuid4().hex[:14]}"
        body, headers = signed(checkout_event(user_id(client), customer))
        answer = stripe.post("/stripe/webhook", content=body, headers=headers)
        assert answer.status_code == 200
        assert answer.json() == {"outcome": "applied"}
        again = stripe.post("/stripe/webhook", content=body, headers=headers)
        assert again.json() == {"outcome": "duplicate"}
        row = db.execute(
            "SELECT stripe_customer_id FROM users WHERE id = %s", [user_id(client)]
        ).fetchone()
        assert row == (customer,)


def test_badly_signed_webhooks_are_refused(service: Service, db: psycopg.Connection[Any]) -> None:
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    event = checkout_event(uuid.uuid4(), customer)
    body, headers = signed(event)
    _, foreign = signed(event, secret="whsec_someone_else")
    attempts = [
        (body, foreign),  # another endpoint's secret
        (body.replace(b"cus_", b"cux_"), headers),  # the body changed after signing
        (body, {}),  # no signature at all
        (body, {"Stripe-Signature": "t=1,v1=00"}),
        (b"not json", {"Stripe-Signature": signed({"id": "x"})[1]["Stripe-Signature"]}),
    ]
    with service.client() as stripe:
        for content, sent in attempts:
            answer = stripe.post("/stripe/webhook", content=content, headers=sent)
            assert answer.status_code == 400, answer.text
            assert "Stripe webhook" in answer.json()["detail"]
    recorded = db.execute("SELECT count(*) FROM stripe_events WHERE id = %s", [event["id"]])
    assert recorded.fetchone() == (0,)


# -- usage -----------------------------------------------------------------------------


def subscribe(service: Service, client: httpx.Client, price_id: str) -> None:
    """Give the client's user a subscription the way Stripe would: two signed webhooks."""
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    with service.client() as stripe:
        for event in (
            checkout_event(user_id(client), customer),
            subscription_event(customer, price_id),
        ):
            body, headers = signed(event)
            answer = stripe.post("/stripe/webhook", content=body, headers=headers)
            assert answer.json() == {"outcome": "applied"}, answer.text


def test_usage_limit_holds_under_concurrent_requests(
    service: Service, db: psycopg.Connection[Any]
) -> None:
    price_id = f"price_{uuid.uuid4().hex[:10]}"
    Usage(db).set_plan_limit(price_id, 20)
    with signed_up(service) as client:
        subscribe(service, client, price_id)
        cookies = dict(client.cookies)
        uid = user_id(client)

    async def fifty_at_once() -> list[httpx.Response]:
        async with service.async_client(cookies=cookies) as aclient:
            return await asyncio.gather(*(aclient.post("/analyze") for _ in range(50)))

    answers = asyncio.run(fifty_at_once())
    assert Counter(a.status_code for a in answers) == {200: 20, 429: 30}
    remaining = sorted(a.json()["remaining"] for a in answers if a.status_code == 200)
    assert remaining == list(range(20))  # each charge saw the one before it
    refused = [a.json() for a in answers if a.status_code == 429]
    assert all(answer["requested"] == 1 for answer in refused)
    # "remaining" in a refusal is the counter as the refused statement's snapshot saw
    # it (sql/queries/usage.sql, consume): under this contention it can be behind.
    assert all(0 <= answer["remaining"] < 20 for answer in refused)
    allowance = Usage(db).allowance(uid)
    assert allowance is not None
    assert (allowance.used, allowance.remaining) == (20, 0)
    ledger = db.execute("SELECT count(*), sum(amount) FROM usage_ledger WHERE user_id = %s", [uid])
    assert ledger.fetchone() == (20, 20)


def test_usage_without_subscription_or_with_bad_units(service: Service) -> None:
    with signed_up(service) as client:
        answer = client.post("/analyze")
        assert answer.status_code == 402
        assert client.post("/analyze", params={"units": 0}).status_code == 422
        assert client.post("/analyze", params={"units": "many"}).status_code == 422


# -- concurrency -----------------------------------------------------------------------


def test_fifty_concurrent_requests_of_five_users(service: Service) -> None:
    users = []
    for _ in range(5):
        with signed_up(service) as client:
            users.append((dict(client.cookies), client.get("/me").json()["email"]))

    async def fifty_at_once() -> list[tuple[str, httpx.Response]]:
        clients = [service.async_client(cookies=cookies) for cookies, _ in users]
        clients.append(service.async_client(headers={"Cookie": "session=nobody"}))
        try:
            calls = [clients[i % 5].get("/me") for i in range(45)]
            calls += [clients[0].post("/login", json={"email": users[0][1], "password": PASSWORD})]
            calls += [clients[5].get("/me") for _ in range(4)]
            answers = await asyncio.gather(*calls)
        finally:
            for aclient in clients:
                await aclient.aclose()
        expected = [users[i % 5][1] for i in range(45)] + [users[0][1]] + ["-"] * 4
        return list(zip(expected, answers, strict=True))

    for expected, answer in asyncio.run(fifty_at_once()):
        if expected == "-":
            assert answer.status_code == 401
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json()["email"] == expected


# -- CSV: a 50 MB streaming upload in constant memory, and back -------------------------


class BigUpload:
    def __init__(self, client: httpx.Client, body: CsvBody, answer: httpx.Response) -> None:
        self.client = client
        self.body = body
        self.answer = answer
        self.baseline = 0
        self.peak = 0
        self.samples = 0


@pytest.fixture(scope="module")
def big_upload(service: Service) -> Iterator[BigUpload]:
    """A 50 MiB CSV streamed to the server, the server's RSS sampled all along."""
    with signed_up(service) as client:
        warm_up = CsvBody(4 * 1024 * 1024)  # every code path has run once before measuring
        assert client.post("/uploads", content=iter(warm_up)).status_code == 201
        time.sleep(0.5)
        body = CsvBody(BIG_UPLOAD)
        baseline = service.rss()
        with PeakRss(service) as sampler:
            answer = client.post("/uploads", params={"filename": "big.csv"}, content=iter(body))
        upload = BigUpload(client, body, answer)
        upload.baseline, upload.peak, upload.samples = baseline, sampler.peak, sampler.samples
        yield upload


def test_a_50_mb_upload_streams_in_constant_memory(
    big_upload: BigUpload, db: psycopg.Connection[Any]
) -> None:
    answer = big_upload.answer
    assert answer.status_code == 201, answer.text
    upload = answer.json()
    assert upload["status"] == "completed"
    assert upload["filename"] == "big.csv"
    assert upload["total_rows"] == big_upload.body.rows
    assert upload["file_size"] == big_upload.body.sent >= BIG_UPLOAD
    assert upload["headers"] == ["id", "email", "city", "amount", "note"]
    stored = db.execute("SELECT count(*) FROM csv_rows WHERE upload_id = %s", [upload["id"]])
    assert stored.fetchone() == (big_upload.body.rows,)
    growth = big_upload.peak - big_upload.baseline
    print(
        f"server RSS {big_upload.baseline / 2**20:.1f} MiB before, peak "
        f"{big_upload.peak / 2**20:.1f} MiB during the upload ({big_upload.samples} samples)"
    )
    assert big_upload.samples > 20
    assert growth < RSS_GROWTH_BOUND


def test_a_download_abandoned_halfway_frees_its_connection(
    service: Service, big_upload: BigUpload, database: str
) -> None:
    upload_id = big_upload.answer.json()["id"]
    with big_upload.client.stream("GET", f"/uploads/{upload_id}/csv") as response:
        assert response.status_code == 200
        first = next(response.iter_raw())
        assert first.startswith(CsvBody.HEADER)
    # The export's COPY ends and its connection goes back to the pool, usable.
    deadline = time.monotonic() + 10
    while _copies_running(database) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _copies_running(database)
    with signed_up(service) as other:
        assert all(other.get("/me").status_code == 200 for _ in range(30))


def _copies_running(database: str) -> bool:
    with connect(database, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query ILIKE 'COPY%%' AND state = 'active'"
        ).fetchone()
    return row is not None and row[0] > 0


def test_the_download_equals_the_upload(service: Service, big_upload: BigUpload) -> None:
    upload_id = big_upload.answer.json()["id"]
    digest = hashlib.sha256()
    size = 0
    url = f"/uploads/{upload_id}/csv"
    with PeakRss(service) as sampler, big_upload.client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        for chunk in response.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    assert size == big_upload.body.sent
    assert digest.hexdigest() == big_upload.body.digest.hexdigest()
    assert sampler.peak - big_upload.baseline < RSS_GROWTH_BOUND


def test_csv_errors(service: Service, big_upload: BigUpload) -> None:
    upload_id = big_upload.answer.json()["id"]
    with signed_up(service) as client:
        assert client.get(f"/uploads/{upload_id}/csv").status_code == 404  # not theirs
        assert client.get("/uploads/999999999/csv").status_code == 404
        assert client.get("/uploads/abc/csv").status_code == 422
        bad = client.post("/uploads", content=b"a,b\n1,2\n3,4,5\n")
        assert bad.status_code == 422
        assert bad.json()["line"] == 3
        assert "3 fields" in bad.json()["detail"]
        failed = bad.json()["upload_id"]
        download = client.get(f"/uploads/{failed}/csv")
        assert download.status_code == 422  # failed, not completed
        binary = client.post("/uploads", content=b"PK\x03\x04" + bytes(100))
        assert binary.status_code == 422
        assert "ZIP" in binary.json()["detail"]


def test_an_upload_cut_off_halfway_fails_and_keeps_no_rows(
    service: Service, db: psycopg.Connection[Any]
) -> None:
    def cut_off() -> Iterator[bytes]:
        chunks = iter(CsvBody(BIG_UPLOAD))
        for _ in range(60):  # ~4 MiB, then the client goes away
            yield next(chunks)
        raise ConnectionAbortedError("the client went away")

    with signed_up(service) as client:
        with pytest.raises(ConnectionAbortedError):
            client.post("/uploads", params={"filename": "cut.csv"}, content=cut_off())
        uid = user_id(client)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT id, status, error_message FROM csv_uploads WHERE user_id = %s", [uid]
        ).fetchone()
        if row is not None and row[1] != "processing":
            break
        time.sleep(0.1)
    assert row is not None
    upload_id, status, error = row
    assert status == "failed"
    assert error.startswith("import aborted")
    rows = db.execute("SELECT count(*) FROM csv_rows WHERE upload_id = %s", [upload_id])
    assert rows.fetchone() == (0,)


# -- shutdown --------------------------------------------------------------------------


def test_shutdown_closes_the_pool(service: Service, database: str) -> None:
    """Last: SIGTERM ends uvicorn cleanly, the lifespan closes the pool, nothing was logged."""
    # uvicorn re-raises the signal once it has shut down gracefully (-15), older ones exit 0
    assert service.stop() in (0, -signal.SIGTERM)
    log = service.log()
    assert "Traceback" not in log, log
    assert "Application shutdown complete" in log
    with connect(database, autocommit=True) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
    assert left == (0,)
