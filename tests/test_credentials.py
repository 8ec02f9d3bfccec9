"""Passwords on AuthAdapter: Node hashes, login, rehash, reset, the e-mail rule, user delete,
and the CLI's password paths as real processes (a pty for the prompt).

Repository tests run on both twins (the ``side`` fixture) and again through
PgBouncer. Most tests make hashes at bcrypt's minimum cost (4) to stay quick;
the Node hashes keep their own costs (10, 12).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import psycopg
import pytest

from tests.support import ROOT, run_cli
from tests.twins import Side
from trampolin import passwords, queries
from trampolin.auth import AuthAdapter, User
from trampolin.errors import InvalidInput, InvalidPassword, NotFound, TrampolinError

raw = queries.load_file(Path(__file__).parent / "sql" / "credentials.sql")
NODE_HASHES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "bcrypt" / "hashes.json").read_text("utf-8")
)["entries"]
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """New hashes at cost 4 unless a test says otherwise."""
    monkeypatch.setenv("TRAMPOLIN_BCRYPT_COST", "4")


@pytest.fixture
def auth(side: Side) -> AuthAdapter:
    return side.repo(AuthAdapter)


def stored_hash(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> str | None:
    row = raw.raw_password_hash.one(conn, id=user_id)
    assert row is not None
    return row["password_hash"]  # type: ignore[no-any-return]


def store_hash(conn: psycopg.Connection[Any], user_id: uuid.UUID, password_hash: str) -> None:
    assert raw.set_raw_password_hash.execrows(conn, id=user_id, password_hash=password_hash) == 1


def sessions_of(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> int:
    row = raw.sessions_of.one(conn, user_id=user_id)
    assert row is not None
    return int(row["n"])


def later(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def reset_token(auth: AuthAdapter, identifier: str, token: str) -> None:
    """A verification token for ``identifier``, live for an hour (the app's reset link)."""
    auth.create_verification_token(identifier=identifier, token=token, expires=later(hours=1))


# Hashes made by Node's bcrypt and bcryptjs sign in unchanged.

NODE_LOGINS = [e for e in NODE_HASHES if e["label"] == "ascii" and e["cost"] in (10, 12)] + [
    e for e in NODE_HASHES if e["library"] == "bcrypt@6.0.0" and e["cost"] == 10
]


@pytest.mark.parametrize(
    "entry", NODE_LOGINS, ids=lambda e: f"{e['library']}-{e['hash'][:7]}-{e['label']}"
)
def test_a_node_hash_signs_in_with_its_password_only(
    auth: AuthAdapter,
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    entry: dict[str, Any],
) -> None:
    monkeypatch.setenv("TRAMPOLIN_BCRYPT_COST", str(entry["cost"]))  # no rehash here
    user = auth.create_user(email="Node.User@Example.com")
    store_hash(conn, user.id, entry["hash"])
    found = auth.verify_credentials("node.user@example.COM", entry["password"])
    assert found is not None
    assert found.id == user.id
    assert found.has_password
    assert auth.verify_credentials("node.user@example.com", "!" + entry["password"][1:]) is None
    assert stored_hash(conn, user.id) == entry["hash"]  # at its cost: left as it was


def test_a_password_of_the_app_past_72_bytes_still_signs_in(
    auth: AuthAdapter, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAMPOLIN_BCRYPT_COST", "10")
    entry = next(e for e in NODE_HASHES if e["label"] == "long_100_bytes")
    user = auth.create_user(email="long@example.com")
    store_hash(conn, user.id, entry["hash"])
    assert auth.verify_credentials("long@example.com", entry["password"]) is not None
    # As in Node: the 73rd byte on does not count; a password of the first 71 fails.
    assert auth.verify_credentials("long@example.com", entry["password"][:72] + "!") is not None
    assert auth.verify_credentials("long@example.com", entry["password"][:71]) is None
    with pytest.raises(InvalidPassword, match="too long"):
        auth.set_password(user.id, entry["password"])


# Login: create_user(password=), verify_credentials, has_password.


def test_create_user_with_a_password_signs_in(
    auth: AuthAdapter, conn: psycopg.Connection[Any]
) -> None:
    user = auth.create_user(email="ada@example.com", name="Ada", password=PASSWORD)
    assert user.has_password
    stored = stored_hash(conn, user.id)
    assert stored is not None
    assert stored.startswith("$2b$04$")  # TRAMPOLIN_BCRYPT_COST
    assert PASSWORD not in stored
    assert auth.verify_credentials("ADA@example.com", PASSWORD) == auth.get_user(user.id)
    plain = auth.create_user(email="no-password@example.com")
    assert not plain.has_password
    assert stored_hash(conn, plain.id) is None


def test_none_for_a_wrong_password_an_unknown_email_or_no_password(auth: AuthAdapter) -> None:
    auth.create_user(email="has@example.com", password=PASSWORD)
    auth.create_user(email="oauth@example.com")
    assert auth.verify_credentials("has@example.com", "wrong password") is None
    assert auth.verify_credentials("has@example.com", "") is None
    assert auth.verify_credentials("has@example.com", PASSWORD.upper()) is None
    assert auth.verify_credentials("nobody@example.com", PASSWORD) is None
    assert auth.verify_credentials("oauth@example.com", PASSWORD) is None
    assert auth.verify_credentials("oauth@example.com", "") is None
    assert auth.verify_credentials("not an address", PASSWORD) is None  # lookups are lenient
    assert auth.verify_credentials("", PASSWORD) is None


def test_every_answer_costs_the_same_bcrypt_work(
    auth: AuthAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth.create_user(email="known@example.com", password=PASSWORD)
    auth.create_user(email="oauth@example.com")
    checked: list[int | None] = []
    real_checkpw = bcrypt.checkpw

    def recording(secret: bytes, stored: bytes) -> bool:
        checked.append(passwords.hash_cost(stored.decode()))
        return bool(real_checkpw(secret, stored))

    monkeypatch.setattr(bcrypt, "checkpw", recording)
    for email, password in [
        ("known@example.com", PASSWORD),
        ("known@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("oauth@example.com", PASSWORD),
    ]:
        auth.verify_credentials(email, password)
    assert checked == [4, 4, 4, 4]  # one check each, at the configured cost


def test_the_hash_never_leaves_the_repository(
    auth: AuthAdapter, conn: psycopg.Connection[Any]
) -> None:
    user = auth.create_user(email="secret@example.com", password=PASSWORD)
    auth.create_session(session_token="s", user_id=user.id, expires=later(days=1))
    stored = stored_hash(conn, user.id)
    assert stored is not None
    found = auth.get_session_and_user("s")
    assert found is not None
    for seen in (
        user,
        auth.get_user(user.id),
        auth.get_user_by_email("secret@example.com"),
        auth.verify_credentials("secret@example.com", PASSWORD),
        auth.update_user(user.id, name="S"),
        auth.set_role(user.id, "admin"),
        found[1],
        *auth.list_users(),
        *auth.users_with_role("admin"),
    ):
        assert isinstance(seen, User)
        assert seen.has_password is True
        assert stored not in repr(seen)
        assert stored[7:] not in repr(seen)
        assert "password_hash" not in asdict(seen)


def test_login_input_bcrypt_cannot_take_is_invalid_input(auth: AuthAdapter) -> None:
    auth.create_user(email="in@example.com", password=PASSWORD)
    for email, password, message in [
        ("in@example.com", b"bytes", "password must be a string"),
        ("in@example.com", None, "password must be a string"),
        ("in@example.com", "pass\x00word", "NUL"),
        ("in@example.com", "\udcff", "not valid Unicode"),
        (42, PASSWORD, "email must be a string"),
        ("in\x00@example.com", PASSWORD, "email contains a NUL byte"),
    ]:
        with pytest.raises(InvalidInput, match=message) as caught:
            auth.verify_credentials(email, password)  # type: ignore[arg-type]
        assert isinstance(caught.value, TrampolinError)


# Rehash on login: a hash below the configured cost is replaced in the same call.


def test_the_apps_cost_10_hash_is_rehashed_at_cost_12_on_login(
    auth: AuthAdapter, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRAMPOLIN_BCRYPT_COST")  # the default, 12
    entry = next(
        e for e in NODE_HASHES if e["library"] == "bcrypt@6.0.0" and e["hash"][:7] == "$2b$10$"
    )
    user = auth.create_user(email="old@example.com")
    store_hash(conn, user.id, entry["hash"])
    found = auth.verify_credentials("old@example.com", entry["password"])
    assert found is not None
    new = stored_hash(conn, user.id)
    assert new is not None
    assert new.startswith("$2b$12$")
    assert found == auth.get_user(user.id)  # the row as rehashed (updated_at moved)
    assert found.updated_at >= user.updated_at
    again = auth.verify_credentials("old@example.com", entry["password"])
    assert again == found
    assert stored_hash(conn, user.id) == new  # at the cost now: kept


def test_no_rehash_on_a_wrong_password_or_at_the_cost(
    auth: AuthAdapter, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = auth.create_user(email="keep@example.com", password=PASSWORD)
    stored = stored_hash(conn, user.id)
    assert auth.verify_credentials("keep@example.com", PASSWORD) is not None
    monkeypatch.setenv("TRAMPOLIN_BCRYPT_COST", "5")
    assert auth.verify_credentials("keep@example.com", "wrong password") is None
    assert stored_hash(conn, user.id) == stored
    monkeypatch.setenv("TRAMPOLIN_BCRYPT_COST", "4")
    assert auth.verify_credentials("keep@example.com", PASSWORD) is not None
    assert stored_hash(conn, user.id) == stored


def test_a_rehash_never_overwrites_a_password_set_meanwhile(
    auth: AuthAdapter, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = auth.create_user(email="race@example.com", password=PASSWORD)
    monkeypatch.setenv("TRAMPOLIN_BCRYPT_COST", "5")
    meanwhile = passwords.hash_password(b"set by an admin meanwhile", 4)
    real_verify = passwords.verify

    def verify_then_change(secret: bytes, stored: str | None, cost: int) -> passwords.Verdict:
        verdict = real_verify(secret, stored, cost)
        store_hash(conn, user.id, meanwhile)  # another connection, between check and rehash
        return verdict

    monkeypatch.setattr(passwords, "verify", verify_then_change)
    assert auth.verify_credentials("race@example.com", PASSWORD) is not None
    assert stored_hash(conn, user.id) == meanwhile


def test_a_login_in_a_read_only_transaction_works_and_rehashes_later(
    auth: AuthAdapter, side: Side, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = auth.create_user(email="replica@example.com", password=PASSWORD)
    stored = stored_hash(conn, user.id)
    monkeypatch.setenv("TRAMPOLIN_BCRYPT_COST", "5")
    with side.transaction():
        auth.conn.execute(raw.read_only.sql)  # the first statement of the transaction
        assert auth.verify_credentials("replica@example.com", PASSWORD) is not None
        assert auth.get_user(user.id) is not None  # the transaction is still usable
    assert stored_hash(conn, user.id) == stored
    assert auth.verify_credentials("replica@example.com", PASSWORD) is not None
    assert passwords.hash_cost(stored_hash(conn, user.id) or "") == 5


# bcrypt never runs on the event loop's thread.


def test_bcrypt_runs_off_the_event_loop_on_the_async_side(
    auth: AuthAdapter, side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    for name in ("hash_password", "verify"):
        real = getattr(passwords, name)

        def recording(*args: Any, real: Callable[..., Any] = real) -> Any:
            threads.append(threading.get_ident())
            return real(*args)

        monkeypatch.setattr(passwords, name, recording)
    user = auth.create_user(email="loop@example.com", password=PASSWORD)
    auth.set_password(user.id, "another password")
    auth.verify_credentials("loop@example.com", "another password")
    reset_token(auth, "loop@example.com", "t")
    auth.reset_password("loop@example.com", "t", "a third password")
    assert len(threads) == 4
    main = threading.get_ident()
    if side.is_async:
        assert main not in threads
    else:
        assert set(threads) == {main}


# set_password.


def test_set_password_replaces_the_old_one_and_keeps_sessions(
    auth: AuthAdapter, conn: psycopg.Connection[Any]
) -> None:
    user = auth.create_user(email="set@example.com")
    auth.create_session(session_token="kept", user_id=user.id, expires=later(days=1))
    auth.set_password(str(user.id), PASSWORD)
    assert auth.verify_credentials("set@example.com", PASSWORD) is not None
    auth.set_password(user.id, "a new password")
    assert auth.verify_credentials("set@example.com", PASSWORD) is None
    assert auth.verify_credentials("set@example.com", "a new password") is not None
    assert auth.get_session_and_user("kept") is not None
    updated = auth.get_user(user.id)
    assert updated is not None
    assert updated.has_password


def test_set_password_for_an_unknown_user_is_not_found(auth: AuthAdapter) -> None:
    for user_id in (uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(NotFound, match="no user"):
            auth.set_password(user_id, PASSWORD)


BAD_PASSWORDS: list[tuple[object, str]] = [
    ("pw12345", "too short"),
    ("", "too short"),
    ("a" * 73, "too long"),
    ("é" * 37, "too long"),  # 37 characters, 74 bytes
    ("long enough\x00", "NUL"),
    ("long enough\ud800", "not valid Unicode"),
    (b"long enough", "must be a string, not bytes"),
    (12345678, "must be a string, not int"),
]


@pytest.mark.parametrize(("password", "message"), BAD_PASSWORDS)
def test_a_password_the_policy_refuses_changes_nothing(
    auth: AuthAdapter, conn: psycopg.Connection[Any], password: object, message: str
) -> None:
    user = auth.create_user(email="policy@example.com", password=PASSWORD)
    before = stored_hash(conn, user.id)
    with pytest.raises(InvalidPassword, match=message) as caught:
        auth.set_password(user.id, password)  # type: ignore[arg-type]
    if isinstance(password, str) and password:
        assert password not in str(caught.value)
    with pytest.raises(InvalidPassword, match=message):
        auth.create_user(email="new@example.com", password=password)  # type: ignore[arg-type]
    assert auth.get_user_by_email("new@example.com") is None
    assert stored_hash(conn, user.id) == before


# reset_password: consume the token, set the password, sign out everywhere.


def test_reset_sets_the_password_consumes_the_token_and_ends_the_sessions(
    auth: AuthAdapter, conn: psycopg.Connection[Any]
) -> None:
    user = auth.create_user(email="Reset.Me@example.com", password=PASSWORD)
    other = auth.create_user(email="other@example.com", password=PASSWORD)
    for token in ("laptop", "phone"):
        auth.create_session(session_token=token, user_id=user.id, expires=later(days=1))
    auth.create_session(session_token="other", user_id=other.id, expires=later(days=1))
    reset_token(auth, "reset.me@example.com", "t")
    reset = auth.reset_password("reset.me@example.com", "t", "brand new password")
    assert reset is not None
    assert reset == auth.get_user(user.id)
    assert reset.has_password
    assert auth.verify_credentials("reset.me@example.com", PASSWORD) is None
    assert auth.verify_credentials("reset.me@example.com", "brand new password") == reset
    assert sessions_of(conn, user.id) == 0
    assert auth.get_session_and_user("laptop") is None
    assert sessions_of(conn, other.id) == 1
    assert auth.verify_credentials("other@example.com", PASSWORD) is not None
    # Single use: the token is gone, and a second reset changes nothing.
    assert auth.reset_password("reset.me@example.com", "t", "yet another password") is None
    assert auth.verify_credentials("reset.me@example.com", "brand new password") is not None


def test_reset_gives_a_user_without_a_password_one(auth: AuthAdapter) -> None:
    user = auth.create_user(email="oauth@example.com")
    reset_token(auth, "oauth@example.com", "t")
    reset = auth.reset_password("oauth@example.com", "t", "first password")
    assert reset is not None
    assert reset.id == user.id
    assert reset.has_password


def test_an_expired_unknown_or_misaddressed_token_resets_nothing(
    auth: AuthAdapter, conn: psycopg.Connection[Any]
) -> None:
    user = auth.create_user(email="x@example.com", password=PASSWORD)
    auth.create_session(session_token="s", user_id=user.id, expires=later(days=1))
    before = stored_hash(conn, user.id)
    old = datetime.now(UTC) - timedelta(seconds=1)
    auth.create_verification_token(identifier="x@example.com", token="old", expires=old)
    reset_token(auth, "x@example.com", "live")
    reset_token(auth, "ghost@example.com", "g")
    assert auth.reset_password("x@example.com", "old", "new password 1") is None
    assert auth.reset_password("x@example.com", "unknown", "new password 2") is None
    assert auth.reset_password("other@example.com", "live", "new password 3") is None
    assert auth.reset_password("ghost@example.com", "g", "new password 4") is None  # no such user
    assert stored_hash(conn, user.id) == before
    assert sessions_of(conn, user.id) == 1
    assert auth.use_verification_token("x@example.com", "old") is None  # deleted, as expired
    assert auth.use_verification_token("ghost@example.com", "g") is None  # consumed
    assert auth.reset_password("x@example.com", "live", "new password 5") is not None


def test_a_refused_password_leaves_the_token_usable(auth: AuthAdapter) -> None:
    auth.create_user(email="y@example.com")
    reset_token(auth, "y@example.com", "t")
    for password, _ in BAD_PASSWORDS:
        with pytest.raises(InvalidPassword):
            auth.reset_password("y@example.com", "t", password)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="NUL"):
        auth.reset_password("y\x00@example.com", "t", "good password")
    assert auth.reset_password("y@example.com", "t", "good password") is not None


def test_a_reset_in_a_rolled_back_transaction_changes_nothing(
    auth: AuthAdapter, side: Side, conn: psycopg.Connection[Any]
) -> None:
    class Undo(Exception):
        pass

    user = auth.create_user(email="undo@example.com", password=PASSWORD)
    auth.create_session(session_token="s", user_id=user.id, expires=later(days=1))
    reset_token(auth, "undo@example.com", "t")

    def reset_then_fail() -> None:
        with side.transaction():
            assert auth.reset_password("undo@example.com", "t", "never kept") is not None
            raise Undo

    with pytest.raises(Undo):
        reset_then_fail()
    assert auth.verify_credentials("undo@example.com", PASSWORD) is not None
    assert sessions_of(conn, user.id) == 1
    assert auth.reset_password("undo@example.com", "t", "kept this time") is not None


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transaction"])
def test_concurrent_resets_with_one_token_exactly_one_wins(
    auth: AuthAdapter, side: Side, autocommit: bool
) -> None:
    count = 6
    user = auth.create_user(email="race@example.com", password=PASSWORD)
    reset_token(auth, "race@example.com", "once")
    barrier = threading.Barrier(count)
    results: dict[str, User | None] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def reset(password: str) -> None:
        try:
            with side.connect(AuthAdapter, autocommit=autocommit) as own:
                barrier.wait(timeout=30)
                got = own.reset_password("race@example.com", "once", password)
                if not autocommit:
                    own.conn.commit()
            with lock:
                results[password] = got
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=reset, args=(f"password number {i}",)) for i in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    assert len(results) == count
    winners = [password for password, got in results.items() if got is not None]
    assert len(winners) == 1
    assert results[winners[0]] is not None
    assert auth.verify_credentials("race@example.com", winners[0]) is not None
    for password in results:
        if password != winners[0]:
            assert auth.verify_credentials("race@example.com", password) is None
    assert auth.verify_credentials("race@example.com", PASSWORD) is None
    assert auth.get_user(user.id) is not None


# One e-mail rule for create_user, update_user and `user add`; lookups stay lenient.

ADDRESS_RULE = re.escape("expected an address like name@example.com")
NOT_ADDRESSES = [
    "",
    "not-an-email",
    "a@",
    "@b",
    "a b@c.d",
    "a\x01@b.c",
    "'; drop table users; --x@ex.com",
    "x@example.com\n",
]


@pytest.mark.parametrize("bad", NOT_ADDRESSES)
def test_create_and_update_refuse_what_user_add_refuses(
    auth: AuthAdapter, side: Side, db_url: str, bad: str
) -> None:
    with pytest.raises(InvalidInput, match=ADDRESS_RULE):
        auth.create_user(email=bad)
    user = auth.create_user(email="fine@example.com")
    with pytest.raises(InvalidInput, match=ADDRESS_RULE):
        auth.update_user(user.id, email=bad)
    assert auth.get_user(user.id) == user
    assert auth.get_user_by_email(bad) is None
    assert auth.verify_credentials(bad, PASSWORD) is None
    if side.is_async:
        return  # the CLI is the same process either way: once is enough
    added = run_cli("user", "add", bad, env={"DATABASE_URL": db_url})
    assert added.returncode == 1
    assert "expected an address like name@example.com" in added.stderr


# What deleting a user takes with it.


def test_user_dependents_counts_what_delete_user_removes(
    auth: AuthAdapter, conn: psycopg.Connection[Any]
) -> None:
    user = auth.create_user(email="gone@example.com", password=PASSWORD)
    keep = auth.create_user(email="keep@example.com")
    for token in ("a", "b"):
        auth.create_session(session_token=token, user_id=user.id, expires=later(days=1))
    auth.link_account(user_id=user.id, type="oauth", provider="github", provider_account_id="1")
    raw.insert_subscription.exec(conn, id="sub_live", user_id=user.id, status="active")
    raw.insert_subscription.exec(conn, id="sub_over", user_id=user.id, status="canceled")
    raw.insert_csv_upload.exec(conn, user_id=user.id, total_rows=120)
    raw.insert_csv_upload.exec(conn, user_id=user.id, total_rows=3)
    raw.insert_csv_upload.exec(conn, user_id=keep.id, total_rows=7)
    dependents = auth.user_dependents(user.id)
    assert dependents is not None
    assert asdict(dependents) == {
        "sessions": 2,
        "accounts": 1,
        "subscriptions": 2,
        "live_subscriptions": 1,
        "csv_uploads": 2,
        "csv_rows": 123,
        "searches": 0,
        "url_analyses": 0,
    }
    assert auth.user_dependents(uuid.uuid4()) is None
    assert auth.user_dependents("not-a-uuid") is None
    auth.delete_user(user.id)
    left = raw.count_user_rows.one(conn, id=user.id)
    assert left == {"users": 0, "sessions": 0, "accounts": 0, "subscriptions": 0, "csv_uploads": 0}
    kept = auth.user_dependents(keep.id)
    assert kept is not None
    assert kept.csv_uploads == 1


# The CLI, as real processes: stdin, the prompt on a pty, nothing in ps or output.


def cli_env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DIRECT_URL")}
    return {**env, "DATABASE_URL": db_url, "TRAMPOLIN_BCRYPT_COST": "4"}


def process_text(pid: int) -> str:
    """What `ps` and other users can read of a process: its argv and environment."""
    seen = []
    for name in ("cmdline", "environ"):
        seen.append(Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode())
    ps = subprocess.run(
        ["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return "\n".join([*seen, ps.stdout])


def run_with_stdin(
    db_url: str, args: list[str], stdin: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run the CLI with ``stdin``, looking at its argv and environment while it waits for EOF."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trampolin", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(db_url),
        cwd=ROOT,
    )
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.flush()  # the password is in the process's hands; stdin is still open
    seen = process_text(proc.pid)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr), seen


def test_cli_user_add_and_set_password_from_stdin(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    secret = "stdin password ✓ 1"
    add = ["user", "add", "root@example.com", "--role", "admin", "--password-stdin"]
    added, seen = run_with_stdin(db_url, add, secret + "\n")
    assert added.returncode == 0, added.stderr
    assert "added root@example.com (role: admin" in added.stdout
    assert "password set" in added.stdout
    assert secret not in added.stdout + added.stderr + seen
    auth = AuthAdapter(conn)
    assert auth.verify_credentials("root@example.com", secret) is not None

    changed, seen = run_with_stdin(
        db_url, ["user", "set-password", "ROOT@example.com", "--password-stdin"], "changed pw\r\n"
    )
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == "password set for root@example.com"
    assert "changed pw" not in changed.stdout + changed.stderr + seen
    assert auth.verify_credentials("root@example.com", "changed pw") is not None
    assert auth.verify_credentials("root@example.com", secret) is None

    listed = run_cli("user", "list", env=cli_env(db_url))
    assert listed.stdout.split("\t")[-1].strip() == "password"


def test_cli_refused_passwords_are_one_line_and_write_nothing(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    for stdin, message in [("pw12345\n", "too short"), ("", "too short"), ("x" * 80, "too long")]:
        result, _ = run_with_stdin(
            db_url, ["user", "add", "z@example.com", "--password-stdin"], stdin
        )
        assert result.returncode == 1
        assert result.stderr.startswith("error: password is ")
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
        if stdin.strip():
            assert stdin.strip() not in result.stderr + result.stdout
    assert AuthAdapter(conn).get_user_by_email("z@example.com") is None
    latin1 = subprocess.run(
        [sys.executable, "-m", "trampolin", "user", "add", "z@example.com", "--password-stdin"],
        input=b"caf\xe9 password\n",
        capture_output=True,
        env=cli_env(db_url),
        cwd=ROOT,
        check=False,
    )
    assert latin1.returncode == 1
    assert latin1.stderr == b"error: the password on stdin is not UTF-8 text\n"
    both = run_cli(
        "user", "add", "z@example.com", "--password-stdin", "--password-prompt", env=cli_env(db_url)
    )
    assert both.returncode == 1
    assert "choose one" in both.stderr


def test_cli_without_a_terminal_asks_for_password_stdin(db_url: str) -> None:
    assert run_cli("user", "add", "t@example.com", env=cli_env(db_url)).returncode == 0
    asking = [
        ["user", "set-password", "t@example.com"],
        ["user", "add", "u@example.com", "--password-prompt"],
    ]
    for args in asking:
        result = subprocess.run(
            [sys.executable, "-m", "trampolin", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=cli_env(db_url),
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        assert result.returncode == 1
        assert result.stderr.strip() == (
            "error: no terminal to ask for the password on: pipe it in with --password-stdin"
        )
    unknown = run_cli("user", "set-password", "nobody@example.com", env=cli_env(db_url))
    assert unknown.returncode == 1
    assert "no user with email 'nobody@example.com'" in unknown.stderr


class Terminal:
    """The CLI on a pseudo-terminal of its own (its controlling tty, as in a shell)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trampolin", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=ROOT,
            start_new_session=True,
            preexec_fn=_take_terminal,  # its controlling tty: where getpass asks
        )
        os.close(slave)
        self.output = ""
        self.seen = 0

    def expect(self, text: str, timeout: float = 60) -> None:
        """Wait until ``text`` shows after what the last expect() matched.

        (getpass flushes typed-ahead input, so each answer waits for its prompt.)
        """
        while text not in self.output[self.seen :]:
            if not self._read(timeout):
                raise AssertionError(f"waited for {text!r}; the terminal shows {self.output!r}")
        self.seen = self.output.index(text, self.seen) + len(text)

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def finish(self, timeout: float = 60) -> int:
        """The exit code, once the process has closed the terminal."""
        while self._read(timeout):
            pass
        os.close(self.master)
        return self.proc.wait(timeout=timeout)

    def _read(self, timeout: float) -> bool:
        """Read what the process wrote; False at its end (AssertionError on a timeout)."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            self.proc.kill()
            raise AssertionError(f"no answer in {timeout}s; the terminal shows {self.output!r}")
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the process closed the terminal
            return False
        self.output += chunk.decode(errors="replace")
        return bool(chunk)


def _take_terminal() -> None:
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.fixture
def terminal(db_url: str) -> Iterator[Callable[..., Terminal]]:
    started: list[Terminal] = []

    def start(*args: str) -> Terminal:
        started.append(Terminal(list(args), cli_env(db_url)))
        return started[-1]

    yield start
    for term in started:
        if term.proc.poll() is None:
            term.proc.kill()
            term.proc.wait()


def test_cli_set_password_asks_twice_without_echo(
    terminal: Callable[..., Terminal], db_url: str, conn: psycopg.Connection[Any]
) -> None:
    AuthAdapter(conn).create_user(email="tty@example.com")
    term = terminal("user", "set-password", "tty@example.com")
    term.expect("New password:")
    term.type("pw12345")
    term.expect("too short")
    term.expect("New password:")
    term.type("typed on a tty 1")
    term.expect("Repeat it:")
    assert "typed on a tty 1" not in process_text(term.proc.pid)
    term.type("typed on a tty 2")
    term.expect("differ")
    term.expect("New password:")
    term.type("typed on a tty 1")
    term.expect("Repeat it:")
    term.type("typed on a tty 1")
    assert term.finish() == 0, term.output
    assert "password set for tty@example.com" in term.output
    assert "typed on a tty" not in term.output  # never echoed
    assert "pw12345" not in term.output
    assert AuthAdapter(conn).verify_credentials("tty@example.com", "typed on a tty 1") is not None


def test_cli_user_add_password_prompt(
    terminal: Callable[..., Terminal], conn: psycopg.Connection[Any]
) -> None:
    term = terminal("user", "add", "Admin@example.com", "--role", "admin", "--password-prompt")
    term.expect("New password:")
    term.type("the admin's password")
    term.expect("Repeat it:")
    term.type("the admin's password")
    assert term.finish() == 0, term.output
    assert "added Admin@example.com (role: admin" in term.output
    assert "password" in term.output
    assert "the admin's password" not in term.output
    found = AuthAdapter(conn).verify_credentials("admin@example.com", "the admin's password")
    assert found is not None
    assert found.role == "admin"


def test_cli_user_add_password_prompt_refuses_a_taken_email_before_asking(
    terminal: Callable[..., Terminal], conn: psycopg.Connection[Any]
) -> None:
    AuthAdapter(conn).create_user(email="taken@example.com")
    term = terminal("user", "add", "TAKEN@example.com", "--password-prompt")
    assert term.finish() == 1
    assert "already exists" in term.output
    assert "New password" not in term.output


def test_cli_user_delete_asks_first_and_says_what_goes(
    terminal: Callable[..., Terminal], db_url: str, conn: psycopg.Connection[Any]
) -> None:
    auth = AuthAdapter(conn)
    user = auth.create_user(email="bye@example.com", password=PASSWORD)
    auth.create_session(session_token="s", user_id=user.id, expires=later(days=1))
    raw.insert_subscription.exec(conn, id="sub_1", user_id=user.id, status="trialing")
    raw.insert_csv_upload.exec(conn, user_id=user.id, total_rows=5)

    term = terminal("user", "delete", "BYE@example.com")
    term.expect("[y/N]:")
    term.type("n")
    assert term.finish() == 1
    assert "nothing deleted" in term.output
    assert (
        "1 session(s), 0 account(s), 1 subscription(s), 1 CSV upload(s) (5 row(s))" in term.output
    )
    assert "warning: 1 subscription(s) not ended in Stripe" in term.output
    assert auth.get_user(user.id) is not None

    piped = subprocess.run(
        [sys.executable, "-m", "trampolin", "user", "delete", "bye@example.com"],
        input="", capture_output=True, text=True, env=cli_env(db_url), cwd=ROOT, timeout=120,
        check=False,
    )  # fmt: skip
    assert piped.returncode == 1
    assert "nothing deleted" in piped.stderr
    assert auth.get_user(user.id) is not None

    term = terminal("user", "delete", "bye@example.com")
    term.expect("[y/N]:")
    term.type("y")
    assert term.finish() == 0, term.output
    assert "deleted bye@example.com with 1 session(s)" in term.output
    assert auth.get_user(user.id) is None


def test_cli_user_delete_yes_for_scripts(db_url: str, conn: psycopg.Connection[Any]) -> None:
    auth = AuthAdapter(conn)
    auth.create_user(email="script@example.com")
    deleted = run_cli("user", "delete", "script@example.com", "--yes", env=cli_env(db_url))
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == (
        "deleted script@example.com with 0 session(s), 0 account(s), 0 subscription(s), "
        "0 CSV upload(s) (0 row(s)), 0 search(es) with 0 URL analysis(es)"
    )
    assert auth.get_user_by_email("script@example.com") is None
    again = run_cli("user", "delete", "script@example.com", "-y", env=cli_env(db_url))
    assert again.returncode == 1
    assert again.stderr.strip().startswith("error: no user with email 'script@example.com'")


def test_migration_0008_rolls_back_and_reapplies(empty_db_url: str) -> None:
    from trampolin.migrations import Migrator

    migrator = Migrator(empty_db_url)
    applied = [m.id for m in migrator.apply()]
    newer = applied[applied.index("0008_user_passwords") :]
    assert [m.id for m in migrator.rollback(len(newer))] == newer[::-1]
    assert [m.id for m in migrator.apply()] == newer


def test_the_column_refuses_what_is_not_a_bcrypt_hash(
    conn: psycopg.Connection[Any], make_user: Callable[..., uuid.UUID]
) -> None:
    user_id = make_user()
    for value in ("hunter2", "$2x$10$" + "a" * 53, "$2b$10$short", "$argon2id$v=19$m=65536"):
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            store_hash(conn, user_id, value)
    store_hash(conn, user_id, "$2y$10$" + "a" * 53)
