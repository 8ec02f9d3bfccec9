"""AuthAdapter: the Auth.js shared adapter suite, ported case by case, then our extras.

Part 1 ports packages/utils/adapter.ts of nextauthjs/next-auth (tests 1-17, in
its order, sharing its mutable fixtures on one module database; the five
WebAuthn tests are out of scope: there is no authenticators table). Part 2
covers what the issue adds: case-insensitive email, hashes at rest, expiry,
concurrency, transactions, errors, roles, property tests and the CLI.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from inspect import signature
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import run_cli, shared_server
from tests.twins import Side, SideName
from trampolin import queries
from trampolin.auth import (
    Account,
    AuthAdapter,
    Pruned,
    Session,
    User,
    VerificationToken,
    hash_token,
    prune_expired,
)
from trampolin.cli import main
from trampolin.db import connect
from trampolin.errors import Conflict, InvalidInput, NotFound, TrampolinError

raw = queries.load_file(Path(__file__).parent / "sql" / "auth.sql")

# -- Part 1: the Auth.js shared adapter test suite ---------------------------
#
# Constants are computed once, when the module loads, as in adapter.ts.
NOW = datetime.now(UTC)
ONE_WEEK_FROM_NOW = NOW + timedelta(days=7)
FIFTEEN_MINUTES_FROM_NOW = NOW + timedelta(minutes=15)
ONE_MONTH = 1000 * 60 * 60 * 24 * 30  # milliseconds, as in adapter.ts
ONE_MONTH_FROM_NOW = NOW + timedelta(milliseconds=ONE_MONTH)
AUTHJS_USER_FIELDS = ("id", "name", "email", "email_verified", "image")


def auth_id() -> str:
    return str(uuid.uuid4())


def hash_token_like_the_suite(token: str) -> str:
    """adapter.ts's hashToken: what Auth.js core hands the adapter as the token."""
    return hashlib.sha256(f"{token}anything".encode()).hexdigest()


def authjs_user(user: User) -> dict[str, Any]:
    """The Auth.js User fields of a User (created_at, updated_at and role are ours)."""
    return {key: getattr(user, key) for key in AUTHJS_USER_FIELDS}


class SuiteState:
    """The suite's shared, mutable ``user``, ``session`` and ``account`` objects."""

    def __init__(self) -> None:
        self.user: dict[str, Any] = {
            "id": auth_id(),
            "email": "fill@murray.com",
            "image": "https://www.fillmurray.com/460/300",
            "name": "Fill Murray",
            "email_verified": datetime.now(UTC),
        }
        self.session: dict[str, Any] = {
            "session_token": auth_id(),
            "expires": ONE_WEEK_FROM_NOW,
        }
        self.account: dict[str, Any] = {
            "provider": "github",
            "provider_account_id": auth_id(),
            "type": "oauth",
            "access_token": auth_id(),
            "expires_at": ONE_MONTH // 1000,
            "id_token": auth_id(),
            "refresh_token": auth_id(),
            "token_type": "bearer",
            "scope": "user",
            "session_state": auth_id(),
        }


@pytest.fixture(scope="module")
def suite_conn() -> Iterator[psycopg.Connection[Any]]:
    """One migrated, seeded database for the whole ordered suite (its db.connect)."""
    from trampolin.migrations import Migrator
    from trampolin.seed import run_seed

    name = f"trampolin_authjs_{uuid.uuid4().hex[:12]}"
    shared_server().create_database(name)
    try:
        url = shared_server().url(name)
        Migrator(url).apply()
        run_seed(url)
        with connect(url, autocommit=True) as connection:
            yield connection
    finally:
        shared_server().drop_database(name)


def db_user(conn: psycopg.Connection[Any], user_id: Any) -> dict[str, Any] | None:
    return raw.raw_user.one(conn, id=uuid.UUID(str(user_id)))


def db_session(conn: psycopg.Connection[Any], session_token: str) -> dict[str, Any] | None:
    row = raw.raw_session.one(conn, token_hash=hash_token(session_token))
    if row is None:
        return None
    # The row holds the digest; in Auth.js terms it is the session of that token.
    assert row.pop("session_token_hash") == hash_token(session_token)
    return {"session_token": session_token, **row}


def db_account(
    conn: psycopg.Connection[Any], provider: str, provider_account_id: str
) -> dict[str, Any] | None:
    return raw.raw_account.one(conn, provider=provider, provider_account_id=provider_account_id)


def db_verification_token(
    conn: psycopg.Connection[Any], identifier: str, token: str
) -> dict[str, Any] | None:
    row = raw.raw_verification_token.one(conn, identifier=identifier, token_hash=hash_token(token))
    if row is None:
        return None
    assert row.pop("token_hash") == hash_token(token)
    return {"token": token, **row}


@pytest.mark.parametrize("side_name", ["sync", "async"])
def test_the_authjs_adapter_suite_in_its_order(
    side_name: SideName, suite_conn: psycopg.Connection[Any]
) -> None:
    """adapter.ts's tests share their state in order, so they run as the steps of one
    test (on either side), which no test scheduler can split."""
    side = Side(side_name, shared_server().url(suite_conn.info.dbname), suite_conn)
    try:
        given = {"adapter": side.repo(AuthAdapter), "suite_conn": suite_conn, "state": SuiteState()}
        suite = AuthJsAdapterSuite()
        for name in sorted(name for name in dir(suite) if name.startswith("step_")):
            step = getattr(suite, name)
            step(**{parameter: given[parameter] for parameter in signature(step).parameters})
    finally:
        side.close()


class AuthJsAdapterSuite:
    """packages/utils/adapter.ts, tests 1-17, in order; each shares state with the next."""

    def step_01_required_methods_exist(self, adapter: AuthAdapter) -> None:
        for method in (
            "create_user",
            "get_user",
            "get_user_by_email",
            "get_user_by_account",
            "update_user",
            "link_account",
            "create_session",
            "get_session_and_user",
            "update_session",
            "delete_session",
        ):
            assert callable(getattr(adapter, method, None)), method

    def step_02_create_user(
        self, adapter: AuthAdapter, suite_conn: psycopg.Connection[Any], state: SuiteState
    ) -> None:
        fields = {k: v for k, v in state.user.items() if k != "id"}
        created = adapter.create_user(**fields)
        dbuser = db_user(suite_conn, created.id)
        # The client's id is ignored, as Prisma's adapter does; the returned id counts.
        assert dbuser == {**state.user, "id": created.id}
        assert authjs_user(created) == dbuser
        state.user = dbuser
        state.session["user_id"] = dbuser["id"]
        state.account["user_id"] = dbuser["id"]

    def step_03_get_user(self, adapter: AuthAdapter, state: SuiteState) -> None:
        assert adapter.get_user(auth_id()) is None
        found = adapter.get_user(state.user["id"])
        assert found is not None
        assert authjs_user(found) == state.user

    def step_04_get_user_by_email(self, adapter: AuthAdapter, state: SuiteState) -> None:
        assert adapter.get_user_by_email("non-existent-email") is None
        found = adapter.get_user_by_email(state.user["email"])
        assert found is not None
        assert authjs_user(found) == state.user

    def step_05_create_session(
        self, adapter: AuthAdapter, suite_conn: psycopg.Connection[Any], state: SuiteState
    ) -> None:
        created = adapter.create_session(**state.session)
        dbsession = db_session(suite_conn, created.session_token)
        assert dbsession == state.session
        assert asdict(created) == state.session
        state.session["user_id"] = dbsession["user_id"]

    def step_06_get_session_and_user(self, adapter: AuthAdapter, state: SuiteState) -> None:
        assert adapter.get_session_and_user("invalid-token") is None
        found = adapter.get_session_and_user(state.session["session_token"])
        if not found:
            raise AssertionError("Session and User was not found, but they should exist")
        session, user = found
        assert asdict(session) == state.session
        assert authjs_user(user) == state.user

    def step_07_update_user(
        self, adapter: AuthAdapter, suite_conn: psycopg.Connection[Any], state: SuiteState
    ) -> None:
        returned = adapter.update_user(state.user["id"], name="Updated Name")
        assert returned is not None
        assert returned.name == "Updated Name"
        dbuser = db_user(suite_conn, state.user["id"])
        assert dbuser is not None
        assert dbuser["name"] == "Updated Name"
        state.user["name"] = "Updated Name"

    def step_08_update_session(
        self, adapter: AuthAdapter, suite_conn: psycopg.Connection[Any], state: SuiteState
    ) -> None:
        token = state.session["session_token"]
        dbsession = db_session(suite_conn, token)
        expires = ONE_MONTH_FROM_NOW
        assert dbsession is not None
        assert dbsession["expires"] != expires
        adapter.update_session(token, expires=expires)
        dbsession = db_session(suite_conn, token)
        assert dbsession is not None
        assert dbsession["expires"] == expires

    def step_09_link_account(
        self, adapter: AuthAdapter, suite_conn: psycopg.Connection[Any], state: SuiteState
    ) -> None:
        adapter.link_account(**state.account)
        dbaccount = db_account(suite_conn, "github", state.account["provider_account_id"])
        assert dbaccount is not None
        assert dbaccount == {**state.account, "id": dbaccount["id"]}
        assert isinstance(dbaccount["expires_at"], int)

    def step_10_get_user_by_account(self, adapter: AuthAdapter, state: SuiteState) -> None:
        assert (
            adapter.get_user_by_account("invalid-provider", "invalid-provider-account-id") is None
        )
        found = adapter.get_user_by_account(
            state.account["provider"], state.account["provider_account_id"]
        )
        assert found is not None
        assert authjs_user(found) == state.user

    def step_11_delete_session(
        self, adapter: AuthAdapter, suite_conn: psycopg.Connection[Any], state: SuiteState
    ) -> None:
        adapter.delete_session(state.session["session_token"])
        assert db_session(suite_conn, state.session["session_token"]) is None

    def step_12_verification_token_methods_exist(self, adapter: AuthAdapter) -> None:
        for method in ("create_verification_token", "use_verification_token"):
            assert callable(getattr(adapter, method, None)), method

    def step_13_create_verification_token(
        self, adapter: AuthAdapter, suite_conn: psycopg.Connection[Any]
    ) -> None:
        identifier = "info@example.com"
        hashed_token = hash_token_like_the_suite(auth_id())
        verification_token: dict[str, Any] = {
            "token": hashed_token,
            "identifier": identifier,
            "expires": FIFTEEN_MINUTES_FROM_NOW,
        }
        adapter.create_verification_token(**verification_token)
        dbtoken = db_verification_token(suite_conn, identifier, hashed_token)
        assert dbtoken == verification_token

    def step_14_use_verification_token(self, adapter: AuthAdapter) -> None:
        identifier = "info@example.com"
        hashed_token = hash_token_like_the_suite(auth_id())
        verification_token: dict[str, Any] = {
            "token": hashed_token,
            "identifier": identifier,
            "expires": FIFTEEN_MINUTES_FROM_NOW,
        }
        adapter.create_verification_token(**verification_token)
        used = adapter.use_verification_token(identifier, hashed_token)
        if not used:
            raise AssertionError("Verification Token was not found, but it should exist")
        assert asdict(used) == verification_token
        assert adapter.use_verification_token(identifier, hashed_token) is None

    def step_15_future_methods_exist(self, adapter: AuthAdapter) -> None:
        for method in ("unlink_account", "delete_user"):
            assert callable(getattr(adapter, method, None)), method

    def step_16_unlink_account(
        self, adapter: AuthAdapter, suite_conn: psycopg.Connection[Any], state: SuiteState
    ) -> None:
        provider, provider_account_id = "github", state.account["provider_account_id"]
        dbaccount = db_account(suite_conn, provider, provider_account_id)
        assert dbaccount is not None
        assert dbaccount == {**state.account, "id": dbaccount["id"]}
        adapter.unlink_account(provider, provider_account_id)
        assert db_account(suite_conn, provider, provider_account_id) is None
        # Not upstream, but implied: the link is gone, the user stays.
        assert adapter.get_user_by_account(provider, provider_account_id) is None

    def step_17_delete_user(
        self, adapter: AuthAdapter, suite_conn: psycopg.Connection[Any], state: SuiteState
    ) -> None:
        assert db_user(suite_conn, state.user["id"]) == state.user
        # Re-populate db with session and account (the same token and account as before).
        adapter.create_session(**state.session)
        adapter.link_account(**state.account)
        adapter.delete_user(state.user["id"])
        assert db_user(suite_conn, state.user["id"]) is None, (
            "User should not exist after it is deleted"
        )
        assert db_session(suite_conn, state.session["session_token"]) is None, (
            "Session should not exist after user is deleted"
        )
        assert db_account(suite_conn, "github", state.account["provider_account_id"]) is None, (
            "Account should not exist after user is deleted"
        )


# -- Part 2: what the issue adds ----------------------------------------------

MakeUser = Callable[..., uuid.UUID]


@pytest.fixture
def auth(side: Side) -> AuthAdapter:
    return side.repo(AuthAdapter)


def later(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def earlier(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def count(conn: psycopg.Connection[Any], query: str) -> int:
    row = getattr(raw, query).one(conn)
    assert row is not None
    return int(row["n"])


# Emails: unique and matched case-insensitively, stored as given.


def test_email_is_matched_case_insensitively_and_stored_as_given(auth: AuthAdapter) -> None:
    user = auth.create_user(email="Ada.Lovelace@Example.COM", name="Ada")
    assert user.email == "Ada.Lovelace@Example.COM"
    for spelling in ("ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM"):
        found = auth.get_user_by_email(spelling)
        assert found == user


def test_duplicate_email_in_another_case_is_a_conflict_naming_it(auth: AuthAdapter) -> None:
    auth.create_user(email="grace@example.com")
    with pytest.raises(Conflict, match=r"GRACE@example\.com"):
        auth.create_user(email="GRACE@example.com")


def test_updating_to_a_taken_email_is_a_conflict(auth: AuthAdapter) -> None:
    auth.create_user(email="one@example.com")
    two = auth.create_user(email="two@example.com")
    with pytest.raises(Conflict, match=r"One@Example\.com"):
        auth.update_user(two.id, email="One@Example.com")
    assert auth.get_user(two.id) == two


# Tokens are hashed at rest; returned objects carry the caller's raw token.


def test_session_token_is_stored_only_as_its_sha256(
    auth: AuthAdapter, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    token = f"session-{secrets.token_urlsafe(24)}"
    session = auth.create_session(session_token=token, user_id=make_user(), expires=later(days=1))
    assert session.session_token == token
    rows = raw.session_rows_as_text.many(conn)
    assert len(rows) == 1
    assert token not in rows[0]["row"]
    assert token not in rows[0]["hash_as_text"]
    stored = raw.raw_session.one(conn, token_hash=hashlib.sha256(token.encode()).digest())
    assert stored is not None
    assert len(stored["session_token_hash"]) == 32
    found = auth.get_session_and_user(token)
    assert found is not None
    assert found[0].session_token == token


def test_verification_token_is_stored_only_as_its_sha256(
    auth: AuthAdapter, conn: psycopg.Connection[Any]
) -> None:
    token = f"magic-{secrets.token_urlsafe(24)}"
    created = auth.create_verification_token(
        identifier="vt@example.com", token=token, expires=later(minutes=15)
    )
    assert created.token == token
    rows = raw.verification_token_rows_as_text.many(conn)
    assert len(rows) == 1
    assert token not in rows[0]["row"]
    assert token not in rows[0]["hash_as_text"]
    assert raw.raw_verification_token.one(
        conn, identifier="vt@example.com", token_hash=hashlib.sha256(token.encode()).digest()
    )
    used = auth.use_verification_token("vt@example.com", token)
    assert used == created


def test_a_session_cannot_be_found_by_its_stored_hash(
    auth: AuthAdapter, make_user: MakeUser
) -> None:
    token = "the-real-token"
    auth.create_session(session_token=token, user_id=make_user(), expires=later(days=1))
    assert auth.get_session_and_user(hash_token(token).hex()) is None


# Expiry.


def test_expired_session_gives_none_and_is_removed(
    auth: AuthAdapter, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    user_id = make_user()
    auth.create_session(session_token="old", user_id=user_id, expires=earlier(seconds=1))
    auth.create_session(session_token="live", user_id=user_id, expires=later(hours=1))
    assert db_session(conn, "old") is not None
    assert auth.get_session_and_user("old") is None
    assert db_session(conn, "old") is None
    assert auth.get_session_and_user("live") is not None
    assert db_session(conn, "live") is not None


def test_get_session_and_user_is_one_statement_live_or_expired(
    auth: AuthAdapter, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = make_user()
    auth.create_session(session_token="live", user_id=user_id, expires=later(hours=1))
    auth.create_session(session_token="old", user_id=user_id, expires=earlier(seconds=1))
    statements: list[object] = []
    for cursor_class in (psycopg.Cursor, psycopg.AsyncCursor):

        def counting(
            self: Any, query: Any, *args: Any, execute: Any = cursor_class.execute, **kwargs: Any
        ) -> Any:
            statements.append(query)
            return execute(self, query, *args, **kwargs)  # a coroutine on the async side

        monkeypatch.setattr(cursor_class, "execute", counting)
    assert auth.get_session_and_user("live") is not None
    assert len(statements) == 1
    assert auth.get_session_and_user("old") is None
    assert len(statements) == 2
    assert auth.get_session_and_user("unknown") is None
    assert len(statements) == 3
    monkeypatch.undo()
    assert auth.update_session("old", expires=later(hours=1)) is None  # it was deleted


def test_update_session_can_revive_or_expire_a_session(
    auth: AuthAdapter, make_user: MakeUser
) -> None:
    auth.create_session(session_token="t", user_id=make_user(), expires=later(hours=1))
    updated = auth.update_session("t", expires=earlier(seconds=1))
    assert updated is not None
    assert updated.session_token == "t"
    assert auth.get_session_and_user("t") is None
    assert auth.update_session("t", expires=later(hours=1)) is None  # removed on read


def test_expired_verification_token_gives_none_and_is_removed(
    auth: AuthAdapter, conn: psycopg.Connection[Any]
) -> None:
    auth.create_verification_token(identifier="a@b.c", token="tok", expires=earlier(seconds=1))
    assert auth.use_verification_token("a@b.c", "tok") is None
    assert db_verification_token(conn, "a@b.c", "tok") is None


def test_verification_token_needs_its_own_identifier(auth: AuthAdapter) -> None:
    auth.create_verification_token(identifier="a@b.c", token="tok", expires=later(minutes=5))
    assert auth.use_verification_token("other@b.c", "tok") is None
    assert auth.use_verification_token("a@b.c", "tok") is not None


def test_prune_deletes_only_expired_rows_and_counts_them(
    auth: AuthAdapter, conn: psycopg.Connection[Any], make_user: MakeUser
) -> None:
    user_id = make_user()
    for i in range(3):
        auth.create_session(session_token=f"old{i}", user_id=user_id, expires=earlier(minutes=1))
    auth.create_session(session_token="live", user_id=user_id, expires=later(days=1))
    for i in range(2):
        auth.create_verification_token(identifier="x", token=f"old{i}", expires=earlier(hours=1))
    auth.create_verification_token(identifier="x", token="live", expires=later(hours=1))
    assert prune_expired(conn) == Pruned(sessions=3, verification_tokens=2)
    assert count(conn, "count_sessions") == 1
    assert count(conn, "count_verification_tokens") == 1
    assert auth.prune_expired() == Pruned(sessions=0, verification_tokens=0)


# Concurrency: exactly one caller gets a verification token.


def test_use_verification_token_is_single_use_under_concurrency(
    auth: AuthAdapter, side: Side
) -> None:
    threads_count = 8
    auth.create_verification_token(identifier="race@x", token="once", expires=later(minutes=5))
    barrier = threading.Barrier(threads_count)
    results: list[VerificationToken | None] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def consume() -> None:
        try:
            with side.connect(AuthAdapter) as own:
                barrier.wait(timeout=30)
                got = own.use_verification_token("race@x", "once")
            with lock:
                results.append(got)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=consume) for _ in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    assert len(results) == threads_count
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].token == "once"


def test_concurrent_callers_in_transactions_still_get_it_once(
    auth: AuthAdapter, side: Side
) -> None:
    auth.create_verification_token(identifier="tx@x", token="once", expires=later(minutes=5))
    barrier = threading.Barrier(4)
    results: list[VerificationToken | None] = []
    lock = threading.Lock()

    def consume() -> None:
        # Not autocommit: the adapter works inside the connection's implicit transaction.
        with side.connect(AuthAdapter, autocommit=False) as own:
            barrier.wait(timeout=30)
            got = own.use_verification_token("tx@x", "once")
            own.conn.commit()
            with lock:
                results.append(got)

    workers = [threading.Thread(target=consume) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert len(results) == 4
    assert sum(r is not None for r in results) == 1


# Transactions: never committed or rolled back by the adapter; usable after an error.


def test_conflict_leaves_the_callers_transaction_usable(auth: AuthAdapter, side: Side) -> None:
    with side.transaction():
        first = auth.create_user(email="a@example.com")
        with pytest.raises(Conflict):
            auth.create_user(email="A@example.com")
        second = auth.create_user(email="b@example.com")
        auth.link_account(user_id=first.id, type="oauth", provider="p", provider_account_id="1")
        with pytest.raises(Conflict):
            auth.link_account(user_id=first.id, type="oauth", provider="p", provider_account_id="1")
        with pytest.raises(NotFound):
            auth.create_session(session_token="s", user_id=uuid.uuid4(), expires=later(days=1))
        assert auth.get_user(second.id) == second
    assert auth.get_user(first.id) == first
    assert auth.get_user_by_account("p", "1") == first


def test_adapter_never_commits_an_implicit_transaction(
    side: Side, conn: psycopg.Connection[Any]
) -> None:
    with side.connect(AuthAdapter, autocommit=False) as auth:
        user = auth.create_user(email="kept@example.com")
        with pytest.raises(Conflict):
            auth.create_user(email="KEPT@example.com")
        auth.create_session(session_token="s", user_id=user.id, expires=later(days=1))
        assert auth.set_role(user.id, "admin") is not None
        assert auth.get_session_and_user("s") is not None
        auth.conn.rollback()
        assert auth.get_user(user.id) is None
        assert count(conn, "count_sessions") == 0
        auth.conn.rollback()


def test_a_rolled_back_outer_transaction_undoes_the_adapters_writes(
    auth: AuthAdapter, side: Side
) -> None:
    class Undo(Exception):
        pass

    def write_then_fail() -> None:
        with side.transaction():
            auth.create_user(email="gone@example.com")
            raise Undo

    with pytest.raises(Undo):
        write_then_fail()
    assert auth.get_user_by_email("gone@example.com") is None


def test_autocommit_writes_are_visible_to_other_connections(auth: AuthAdapter, side: Side) -> None:
    user = auth.create_user(email="seen@example.com")
    with side.connect(AuthAdapter) as other:
        assert other.get_user(user.id) == user


# Unknown ids, tokens and accounts give None; deletes do nothing.


def test_unknown_things_give_none_and_deletes_do_nothing(auth: AuthAdapter) -> None:
    missing = uuid.uuid4()
    assert auth.get_user(missing) is None
    assert auth.get_user(str(missing)) is None
    assert auth.get_user("not-a-uuid") is None
    assert auth.get_user("") is None
    assert auth.get_user_by_email("nobody@example.com") is None
    assert auth.get_user_by_account("github", "nobody") is None
    assert auth.update_user(missing, name="x") is None
    assert auth.update_user("not-a-uuid", name="x") is None
    assert auth.update_session("nope", expires=later(days=1)) is None
    assert auth.get_session_and_user("nope") is None
    assert auth.use_verification_token("nobody", "nope") is None
    assert auth.set_role(missing, "admin") is None
    auth.delete_user(missing)
    auth.delete_user("not-a-uuid")
    auth.unlink_account("github", "nobody")
    auth.delete_session("nope")


def test_writes_for_an_unknown_user_are_not_found(auth: AuthAdapter) -> None:
    for user_id in (uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(NotFound, match="no user"):
            auth.create_session(session_token="s", user_id=user_id, expires=later(days=1))
        with pytest.raises(NotFound, match="no user"):
            auth.link_account(user_id=user_id, type="oauth", provider="p", provider_account_id="1")


def test_ids_may_be_given_as_strings(auth: AuthAdapter) -> None:
    user = auth.create_user(email="s@example.com")
    assert auth.get_user(str(user.id)) == user
    session = auth.create_session(session_token="t", user_id=str(user.id), expires=later(days=1))
    assert session.user_id == user.id


# update_user is partial.


def test_update_user_changes_only_given_fields_and_none_clears(auth: AuthAdapter) -> None:
    verified = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    user = auth.create_user(email="p@example.com", name="P", image="img", email_verified=verified)
    renamed = auth.update_user(user.id, name="Q")
    assert renamed is not None
    assert (renamed.name, renamed.image, renamed.email_verified) == ("Q", "img", verified)
    cleared = auth.update_user(user.id, image=None, email_verified=None)
    assert cleared is not None
    assert (cleared.name, cleared.image, cleared.email_verified) == ("Q", None, None)
    moved = auth.update_user(user.id, email="New@example.com", email_verified=verified)
    assert moved is not None
    assert (moved.email, moved.email_verified, moved.name) == ("New@example.com", verified, "Q")
    assert auth.update_user(user.id) == moved
    assert moved.created_at == user.created_at


def test_update_user_rejects_unknown_fields_and_clearing_the_email(auth: AuthAdapter) -> None:
    user = auth.create_user(email="u@example.com")
    with pytest.raises(InvalidInput, match=r"unknown field.*nickname"):
        auth.update_user(user.id, nickname="x")
    with pytest.raises(InvalidInput, match="role"):
        auth.update_user(user.id, role="admin")
    with pytest.raises(InvalidInput, match="email"):
        auth.update_user(user.id, email=None)
    assert auth.get_user(user.id) == user


# Accounts.


def test_link_account_returns_every_field_and_minimal_accounts_work(auth: AuthAdapter) -> None:
    user = auth.create_user(email="acc@example.com")
    account = auth.link_account(
        user_id=user.id, type="oidc", provider="auth0", provider_account_id="a1"
    )
    assert isinstance(account, Account)
    assert (account.user_id, account.type, account.provider) == (user.id, "oidc", "auth0")
    assert account.refresh_token is None
    assert account.expires_at is None
    big = auth.link_account(
        user_id=user.id, type="oauth", provider="x", provider_account_id="b", expires_at=2**62
    )
    assert big.expires_at == 2**62


def test_duplicate_account_is_a_conflict_naming_provider_and_id(auth: AuthAdapter) -> None:
    one = auth.create_user(email="one@example.com")
    two = auth.create_user(email="two@example.com")
    auth.link_account(user_id=one.id, type="oauth", provider="github", provider_account_id="42")
    with pytest.raises(Conflict, match=r"'42'.*'github'"):
        auth.link_account(user_id=two.id, type="oauth", provider="github", provider_account_id="42")
    auth.link_account(user_id=two.id, type="oauth", provider="gitlab", provider_account_id="42")


def test_duplicate_tokens_are_conflicts(auth: AuthAdapter, make_user: MakeUser) -> None:
    user_id = make_user()
    auth.create_session(session_token="same", user_id=user_id, expires=later(days=1))
    with pytest.raises(Conflict, match="session token"):
        auth.create_session(session_token="same", user_id=user_id, expires=later(days=2))
    auth.create_verification_token(identifier="i@x", token="same", expires=later(minutes=5))
    with pytest.raises(Conflict, match="i@x"):
        auth.create_verification_token(identifier="i@x", token="same", expires=later(minutes=5))
    auth.create_verification_token(identifier="j@x", token="same", expires=later(minutes=5))


# Bad input: clear InvalidInput errors naming the field.

NUL_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("create_user", {"email": "a\x00@x"}, "email"),
    ("create_user", {"email": "a@x", "name": "N\x00"}, "name"),
    ("create_user", {"email": "a@x", "image": "\x00"}, "image"),
    ("get_user_by_email", {"email": "\x00"}, "email"),
    ("get_user_by_account", {"provider": "p\x00", "provider_account_id": "1"}, "provider"),
    (
        "get_user_by_account",
        {"provider": "p", "provider_account_id": "\x00"},
        "provider_account_id",
    ),
    (
        "create_session",
        {"session_token": "t\x00", "user_id": uuid.uuid4(), "expires": NOW},
        "session_token",
    ),
    ("get_session_and_user", {"session_token": "\x00"}, "session_token"),
    ("update_session", {"session_token": "\x00", "expires": NOW}, "session_token"),
    ("delete_session", {"session_token": "\x00"}, "session_token"),
    (
        "create_verification_token",
        {"identifier": "\x00", "token": "t", "expires": NOW},
        "identifier",
    ),
    ("create_verification_token", {"identifier": "i", "token": "\x00", "expires": NOW}, "token"),
    ("use_verification_token", {"identifier": "i\x00", "token": "t"}, "identifier"),
    ("use_verification_token", {"identifier": "i", "token": "t\x00"}, "token"),
    ("unlink_account", {"provider": "\x00", "provider_account_id": "1"}, "provider"),
    ("users_with_role", {"name": "ad\x00min"}, "role"),
]


@pytest.mark.parametrize(("method", "kwargs", "field"), NUL_CASES)
def test_a_nul_byte_is_invalid_input_naming_the_field(
    auth: AuthAdapter, method: str, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput, match=rf"^{field} contains a NUL byte"):
        getattr(auth, method)(**kwargs)


def test_nul_bytes_in_account_and_update_fields(auth: AuthAdapter) -> None:
    user = auth.create_user(email="nul@example.com")
    base: dict[str, Any] = {
        "user_id": user.id,
        "type": "oauth",
        "provider": "p",
        "provider_account_id": "1",
    }
    for field in ("type", "provider", "provider_account_id", "access_token", "id_token", "scope"):
        with pytest.raises(InvalidInput, match=rf"^{field} contains a NUL byte"):
            auth.link_account(**{**base, field: "x\x00y"})
    for field in ("name", "email", "image"):
        with pytest.raises(InvalidInput, match=rf"^{field} contains a NUL byte"):
            auth.update_user(user.id, **{field: "\x00"})
    with pytest.raises(InvalidInput, match=r"^role contains a NUL byte"):
        auth.set_role(user.id, "\x00")
    assert auth.get_user(user.id) == user


def test_wrong_types_and_naive_datetimes_are_invalid_input(auth: AuthAdapter) -> None:
    user = auth.create_user(email="types@example.com")
    naive = datetime(2030, 1, 1)  # naive on purpose
    cases: list[Callable[[], object]] = [
        lambda: auth.create_user(email=42),  # type: ignore[arg-type]
        lambda: auth.create_user(email="x@x", email_verified=naive),
        lambda: auth.create_user(email="x@x", email_verified="2030-01-01"),  # type: ignore[arg-type]
        lambda: auth.create_session(session_token="t", user_id=user.id, expires=naive),
        lambda: auth.create_session(session_token=b"t", user_id=user.id, expires=later(days=1)),  # type: ignore[arg-type]
        lambda: auth.update_session("t", expires=None),  # type: ignore[arg-type]
        lambda: auth.create_verification_token(identifier="i", token="t", expires=naive),
        lambda: auth.get_user(42),  # type: ignore[arg-type]
        lambda: auth.get_session_and_user("\ud800"),
        lambda: auth.link_account(
            user_id=user.id, type="oauth", provider="p", provider_account_id="1", expires_at="1"  # type: ignore[arg-type]
        ),
        lambda: auth.link_account(
            user_id=user.id, type="oauth", provider="p", provider_account_id="1", expires_at=True
        ),
        lambda: auth.link_account(
            user_id=user.id, type="oauth", provider="p", provider_account_id="1", expires_at=2**63
        ),
    ]  # fmt: skip
    for case in cases:
        with pytest.raises(InvalidInput):
            case()
    assert auth.get_user(user.id) == user


def test_a_value_too_long_to_index_is_invalid_input(auth: AuthAdapter, side: Side) -> None:
    user = auth.create_user(email="short@example.com")
    with side.transaction():
        with pytest.raises(InvalidInput, match="too long"):
            auth.link_account(
                user_id=user.id,
                type="oauth",
                provider="p",
                provider_account_id=secrets.token_hex(5000),
            )
        auth.link_account(user_id=user.id, type="oauth", provider="p", provider_account_id="1")
    with pytest.raises(InvalidInput, match="expected an address"):  # before the index
        auth.create_user(email=secrets.token_hex(5000) + "@example.com")


# Roles.


def test_set_role_and_users_with_role(auth: AuthAdapter) -> None:
    ada = auth.create_user(email="ada@example.com")
    bob = auth.create_user(email="Bob@example.com")
    assert ada.role is None
    admin = auth.set_role(ada.id, "admin")
    assert admin is not None
    assert admin.role == "admin"
    assert auth.get_user(ada.id) == admin
    assert auth.set_role(str(bob.id), "admin") is not None
    assert [u.email for u in auth.users_with_role("admin")] == [
        "ada@example.com",
        "Bob@example.com",
    ]
    assert auth.users_with_role("user") == []
    demoted = auth.set_role(bob.id, "user")
    assert demoted is not None
    assert demoted.role == "user"
    assert [u.id for u in auth.users_with_role("admin")] == [ada.id]
    cleared = auth.set_role(ada.id, None)
    assert cleared is not None
    assert cleared.role is None
    assert auth.users_with_role("admin") == []
    assert [u.email for u in auth.list_users()] == ["ada@example.com", "Bob@example.com"]


def test_the_role_shows_in_every_user_lookup(auth: AuthAdapter) -> None:
    user = auth.create_user(email="r@example.com")
    auth.set_role(user.id, "admin")
    auth.create_session(session_token="s", user_id=user.id, expires=later(days=1))
    auth.link_account(user_id=user.id, type="oauth", provider="p", provider_account_id="1")
    found = auth.get_session_and_user("s")
    assert found is not None
    for looked_up in (
        auth.get_user(user.id),
        auth.get_user_by_email("R@example.com"),
        auth.get_user_by_account("p", "1"),
        auth.update_user(user.id, name="R"),
        found[1],
    ):
        assert looked_up is not None
        assert looked_up.role == "admin"


def test_unknown_role_is_not_found_naming_it(auth: AuthAdapter, side: Side) -> None:
    user = auth.create_user(email="x@example.com")
    with side.transaction():
        with pytest.raises(NotFound, match="'superuser'"):
            auth.set_role(user.id, "superuser")
        with pytest.raises(NotFound, match="'superuser'"):
            auth.set_role(uuid.uuid4(), "superuser")
        with pytest.raises(NotFound, match="'Admin'"):
            auth.users_with_role("Admin")
    assert auth.get_user(user.id) == user


# Property tests: every string argument round-trips verbatim.

NASTY = [
    "'",
    '"',
    "\\",
    "\\'",
    "''",
    "%s",
    "%(email)s",
    "{}",
    "$1",
    "$$",
    "--",
    "/*",
    "*/",
    ";",
    "'; DROP TABLE users; --",
    '" OR 1=1 --',
    "E'\\x00'",
    "\\x00",
    "\u00e9",
    "\u0130",
    "\u00df",
    "\U0001f600",
    "\u202e",
    "\ufeff",
    "\t\n\r",
]
safe_text = st.lists(
    st.one_of(
        st.sampled_from(NASTY),
        # No NUL (tested on its own below) and no lone surrogates (not encodable).
        st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=12),
    ),
    max_size=5,
).map("".join)
nul_text = st.tuples(safe_text, safe_text).map(lambda pair: pair[0] + "\x00" + pair[1])
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# An address as email_address() accepts it: printable, no spaces, one "@" at least.
address_text = st.text(
    st.characters(exclude_categories=["Cs", "Cc", "Cf", "Co", "Cn", "Zs", "Zl", "Zp"]),
    max_size=12,
)


@PROPERTY_SETTINGS
@given(name=safe_text, image=safe_text, local=address_text)
def test_user_strings_round_trip(auth: AuthAdapter, name: str, image: str, local: str) -> None:
    email = f"{uuid.uuid4().hex}{local}@x"
    user = auth.create_user(email=email, name=name, image=image)
    assert (user.email, user.name, user.image) == (email, name, image)
    assert auth.get_user(user.id) == user
    assert auth.get_user_by_email(email) == user
    new_email = f"{local}{uuid.uuid4().hex}@{local}x"
    updated = auth.update_user(user.id, name=image, image=name, email=new_email)
    assert updated is not None
    assert (updated.name, updated.image, updated.email) == (image, name, new_email)
    assert auth.get_user_by_email(new_email) == updated


@PROPERTY_SETTINGS
@given(
    provider=safe_text,
    provider_account_id=safe_text,
    account_type=safe_text,
    token=safe_text,
    scope=safe_text,
)
def test_account_strings_round_trip(
    auth: AuthAdapter,
    make_user: MakeUser,
    provider: str,
    provider_account_id: str,
    account_type: str,
    token: str,
    scope: str,
) -> None:
    user_id = make_user()
    account = auth.link_account(
        user_id=user_id,
        type=account_type,
        provider=provider,
        provider_account_id=provider_account_id,
        access_token=token,
        refresh_token=token,
        id_token=token,
        token_type=scope,
        scope=scope,
        session_state=token,
    )
    assert (account.provider, account.provider_account_id, account.type) == (
        provider,
        provider_account_id,
        account_type,
    )
    assert (account.access_token, account.refresh_token, account.id_token) == (token,) * 3
    assert (account.scope, account.token_type, account.session_state) == (scope, scope, token)
    found = auth.get_user_by_account(provider, provider_account_id)
    assert found is not None
    assert found.id == user_id
    auth.unlink_account(provider, provider_account_id)
    assert auth.get_user_by_account(provider, provider_account_id) is None


@PROPERTY_SETTINGS
@given(session_token=safe_text, identifier=safe_text, token=safe_text)
def test_token_strings_round_trip(
    auth: AuthAdapter, make_user: MakeUser, session_token: str, identifier: str, token: str
) -> None:
    user_id = make_user()
    expires = later(days=1)
    session = auth.create_session(session_token=session_token, user_id=user_id, expires=expires)
    assert session == Session(session_token, user_id, expires)
    found = auth.get_session_and_user(session_token)
    assert found is not None
    assert found[0] == session
    auth.delete_session(session_token)
    assert auth.get_session_and_user(session_token) is None
    created = auth.create_verification_token(identifier=identifier, token=token, expires=expires)
    assert created == VerificationToken(identifier, token, expires)
    assert auth.use_verification_token(identifier, token) == created
    assert auth.use_verification_token(identifier, token) is None


@PROPERTY_SETTINGS
@given(role=safe_text)
def test_any_role_name_is_looked_up_verbatim(
    auth: AuthAdapter, make_user: MakeUser, role: str
) -> None:
    user_id = make_user()
    if role in ("admin", "user"):
        updated = auth.set_role(user_id, role)
        assert updated is not None
        assert updated.role == role
        return
    with pytest.raises(NotFound) as caught:
        auth.set_role(user_id, role)
    assert repr(role) in str(caught.value)


@PROPERTY_SETTINGS
@given(value=nul_text)
def test_any_string_with_a_nul_byte_is_invalid_input(auth: AuthAdapter, value: str) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        auth.create_user(email=value)
    with pytest.raises(InvalidInput, match="NUL"):
        auth.get_session_and_user(value)
    with pytest.raises(InvalidInput, match="NUL"):
        auth.use_verification_token(value, "t")


# The CLI: user add / set-role / list, auth prune.


def invoke(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["--database-url", db_url, *args])


def test_cli_user_add_with_role_set_role_and_list(db_url: str) -> None:
    added = invoke(db_url, "user", "add", "Admin@Example.com", "--name", "Ada", "--role", "admin")
    assert added.exit_code == 0, added.output
    assert "added Admin@Example.com (role: admin" in added.stdout
    plain = invoke(db_url, "user", "add", "bob@example.com")
    assert plain.exit_code == 0, plain.output
    assert "role: none" in plain.stdout

    listed = invoke(db_url, "user", "list")
    assert listed.exit_code == 0
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [line[:3] for line in lines] == [
        ["Admin@Example.com", "admin", "Ada"],
        ["bob@example.com", "-", ""],
    ]
    admins = invoke(db_url, "user", "list", "--role", "admin")
    assert [line.split("\t")[0] for line in admins.stdout.splitlines()] == ["Admin@Example.com"]

    changed = invoke(db_url, "user", "set-role", "BOB@example.com", "admin")
    assert changed.exit_code == 0, changed.output
    assert "updated bob@example.com (role: admin" in changed.stdout
    admins = invoke(db_url, "user", "list", "--role", "admin")
    assert len(admins.stdout.splitlines()) == 2


def test_cli_errors_are_one_line_and_leave_nothing_behind(db_url: str) -> None:
    bad_role = invoke(db_url, "user", "add", "x@example.com", "--role", "superuser")
    assert bad_role.exit_code == 1
    assert bad_role.stderr.strip() == (
        "error: no role named 'superuser' (seeded roles: admin, user)"
    )
    assert invoke(db_url, "user", "list").stdout == ""  # the user was not created

    assert invoke(db_url, "user", "add", "x@example.com").exit_code == 0
    duplicate = invoke(db_url, "user", "add", "X@EXAMPLE.COM")
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.stderr
    assert "X@EXAMPLE.COM" in duplicate.stderr

    missing = invoke(db_url, "user", "set-role", "nobody@example.com", "admin")
    assert missing.exit_code == 1
    assert "no user with email 'nobody@example.com'" in missing.stderr
    unknown_role = invoke(db_url, "user", "set-role", "x@example.com", "root")
    assert unknown_role.exit_code == 1
    assert "no role named 'root'" in unknown_role.stderr
    no_such_list = invoke(db_url, "user", "list", "--role", "root")
    assert no_such_list.exit_code == 1

    nul = invoke(db_url, "user", "add", "a\x00b@example.com")
    assert nul.exit_code == 1
    assert "NUL" in nul.stderr


def test_cli_auth_prune_prints_counts(db_url: str, conn: psycopg.Connection[Any]) -> None:
    auth = AuthAdapter(conn)
    user = auth.create_user(email="p@example.com")
    auth.create_session(session_token="old", user_id=user.id, expires=earlier(days=1))
    auth.create_verification_token(identifier="p", token="a", expires=earlier(days=1))
    auth.create_verification_token(identifier="p", token="b", expires=earlier(days=1))
    result = invoke(db_url, "auth", "prune")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "pruned 1 expired session(s) and 2 expired verification token(s)"
    )


def test_cli_as_a_real_subprocess(db_url: str) -> None:
    env = {"DATABASE_URL": db_url}
    added = run_cli("user", "add", "root@example.com", "--role", "admin", env=env)
    assert added.returncode == 0, added.stderr
    assert "root@example.com (role: admin" in added.stdout
    listed = run_cli("user", "list", "--role", "admin", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("root@example.com\tadmin\t")
    failed = run_cli("user", "set-role", "root@example.com", "owner", env=env)
    assert failed.returncode == 1
    assert failed.stderr.strip() == "error: no role named 'owner' (seeded roles: admin, user)"
    assert "Traceback" not in failed.stderr
    pruned = run_cli("auth", "prune", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 0 expired session(s) and 0 expired verification token(s)" in pruned.stdout


def test_cli_help_lists_the_groups() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "user" in result.stdout
    assert "auth" in result.stdout
    for group in (["user", "--help"], ["auth", "--help"], ["user", "add", "--help"]):
        assert CliRunner().invoke(main, group).exit_code == 0


def test_errors_are_trampolin_errors() -> None:
    assert issubclass(Conflict, TrampolinError)
    assert issubclass(InvalidInput, TrampolinError)
    assert issubclass(NotFound, TrampolinError)


def test_the_adapter_works_whatever_the_connections_row_factory(db_url: str) -> None:
    from psycopg.rows import dict_row

    with connect(db_url, autocommit=True, row_factory=dict_row) as connection:
        auth = AuthAdapter(connection)
        user = auth.create_user(email="rows@example.com")
        session = auth.create_session(session_token="t", user_id=user.id, expires=later(days=1))
        assert auth.get_session_and_user("t") == (session, user)
        auth.delete_session("t")
        assert auth.get_session_and_user("t") is None


def test_migration_0005_rolls_back_and_reapplies(empty_db_url: str) -> None:
    from trampolin.migrations import Migrator

    migrator = Migrator(empty_db_url)
    applied = [m.id for m in migrator.apply()]
    newer = applied[applied.index("0005_auth_expire_session") :]  # later migrations too
    undone = migrator.rollback(len(newer))
    assert [m.id for m in undone] == newer[::-1]
    assert [m.id for m in migrator.apply()] == newer


@pytest.mark.parametrize("bad", ["", "   ", "not-an-email", "a@", "@b", "a b@c.d", "a\x01@b.c"])
def test_user_add_refuses_what_is_not_an_email_address(db_url: str, bad: str) -> None:
    result = CliRunner().invoke(main, ["--database-url", db_url, "user", "add", bad])
    assert result.exit_code == 1
    assert "expected an address like name@example.com" in result.output
