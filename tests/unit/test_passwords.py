"""The password policy of trampolin.passwords (no database): rules, Node hashes, rehash, dummy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from trampolin import passwords
from trampolin.errors import ConfigError, InvalidInput, InvalidPassword, TrampolinError

NODE_HASHES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "data" / "bcrypt" / "hashes.json").read_text("utf-8")
)["entries"]
FAST = 4  # bcrypt's minimum cost, for tests that make hashes of their own


def entry_id(entry: dict[str, Any]) -> str:
    return f"{entry['library']}-{entry['hash'][:7]}-{entry['label']}"


# Hashes made by Node's bcrypt and bcryptjs verify, and only with their password.


def test_the_node_hashes_cover_every_label_library_and_the_apps_costs() -> None:
    labels = {entry["hash"][:4] for entry in NODE_HASHES}
    assert labels == {"$2a$", "$2b$", "$2y$"}
    assert {entry["cost"] for entry in NODE_HASHES} >= {4, 10, 12, 13}
    libraries = {entry["library"].split()[0] for entry in NODE_HASHES}
    assert libraries == {"bcrypt@6.0.0", "bcryptjs@3.0.3", "bcryptjs@2.4.3"}
    assert all(passwords.hash_cost(e["hash"]) == e["cost"] for e in NODE_HASHES)


@pytest.mark.parametrize("entry", NODE_HASHES, ids=entry_id)
def test_every_node_hash_verifies_with_its_password_only(entry: dict[str, Any]) -> None:
    stored, password = entry["hash"], entry["password"]
    cost = entry["cost"]  # at its own cost: no rehash here
    assert passwords.verify(passwords.login_password(password), stored, cost) == (
        passwords.Verdict(True)
    )
    if cost <= 10:  # one wrong guess each where bcrypt is quick
        wrong = password[:-1] + chr(ord(password[-1]) ^ 1)
        if len(password.encode()) > 72:
            wrong = password[:71] + "?"
        assert not passwords.verify(passwords.login_password(wrong), stored, cost).ok


def test_past_72_bytes_only_the_first_72_count_as_they_did_in_node() -> None:
    long = next(e for e in NODE_HASHES if e["label"] == "long_100_bytes")
    assert len(long["password"].encode()) == 100
    same_start = long["password"][:72] + "something else entirely"
    assert passwords.verify(passwords.login_password(same_start), long["hash"], 10).ok
    assert not passwords.verify(
        passwords.login_password(long["password"][:71]), long["hash"], 10
    ).ok


def test_a_short_legacy_password_still_signs_in() -> None:
    short = next(e for e in NODE_HASHES if e["label"] == "legacy_short")
    assert len(short["password"]) < passwords.MIN_LENGTH
    assert passwords.verify(passwords.login_password(short["password"]), short["hash"], 10).ok


# New hashes: $2b$ at the configured cost; Node-compatible by construction.


def test_new_hashes_are_2b_at_the_given_cost_and_verify() -> None:
    secret = passwords.new_password("pässwörd-🙂-ok")
    stored = passwords.hash_password(secret, FAST)
    assert stored.startswith("$2b$04$")
    assert len(stored) == 60
    assert passwords.hash_cost(stored) == FAST
    assert bcrypt.checkpw("pässwörd-🙂-ok".encode(), stored.encode())
    assert passwords.verify(secret, stored, FAST).ok
    assert stored != passwords.hash_password(secret, FAST)  # a new salt each time


def test_exactly_72_bytes_is_accepted_and_73_is_not() -> None:
    assert len(passwords.new_password("€" * 24)) == 72
    with pytest.raises(InvalidPassword, match="at most 72 bytes"):
        passwords.new_password("€" * 24 + "x")
    with pytest.raises(InvalidPassword, match="too long"):
        passwords.new_password("a" * 73)


# The policy for new passwords: clear errors, never the password itself.

BAD_NEW = [
    ("", "too short"),
    ("seven77", "too short"),
    ("a" * 73, "too long"),
    ("🙂" * 19, "too long"),  # 19 characters, 76 bytes
    ("long enough\x00but NUL", "NUL byte"),
    ("long enough \udcff", "not valid Unicode"),
    (b"bytes password", "must be a string, not bytes"),
    (None, "must be a string, not NoneType"),
    (12345678, "must be a string, not int"),
]


@pytest.mark.parametrize(("password", "message"), BAD_NEW)
def test_new_passwords_the_policy_refuses(password: object, message: str) -> None:
    with pytest.raises(InvalidPassword, match=message) as caught:
        passwords.new_password(password)
    assert isinstance(caught.value, InvalidInput)
    assert isinstance(caught.value, TrampolinError)
    if isinstance(password, str) and password:
        assert password not in str(caught.value)


def test_eight_characters_is_enough_whatever_their_bytes() -> None:
    assert passwords.new_password("abcdefgh") == b"abcdefgh"
    assert passwords.new_password("ñññññññň") == "ñññññññň".encode()
    assert passwords.new_password("   spaces   ") == b"   spaces   "


@pytest.mark.parametrize(
    ("password", "message"),
    [
        (b"bytes", "password must be a string, not bytes"),
        (None, "password must be a string, not NoneType"),
        ("x\x00y", "NUL byte"),
        ("\ud800", "not valid Unicode"),
    ],
)
def test_login_input_bcrypt_cannot_take_is_invalid_input(password: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        passwords.login_password(password)
    assert not isinstance(caught.value, InvalidPassword)  # not a policy matter at login


def test_login_passwords_have_no_length_rule() -> None:
    assert passwords.login_password("") == b""
    assert passwords.login_password("x") == b"x"
    assert passwords.login_password("y" * 500) == b"y" * 72


# Rehash: a match below the configured cost carries a new hash at that cost.


def test_a_match_below_the_configured_cost_brings_a_new_hash() -> None:
    secret = passwords.new_password("upgrade me please")
    weak = passwords.hash_password(secret, FAST)
    verdict = passwords.verify(secret, weak, 5)
    assert verdict.ok
    assert verdict.new_hash is not None
    assert verdict.new_hash.startswith("$2b$05$")
    assert passwords.verify(secret, verdict.new_hash, 5) == passwords.Verdict(True)
    assert passwords.verify(secret, weak, FAST) == passwords.Verdict(True)  # at cost: kept


def test_a_node_2a_hash_below_cost_is_rehashed_as_2b() -> None:
    entry = next(e for e in NODE_HASHES if e["hash"].startswith("$2a$10$"))
    verdict = passwords.verify(passwords.login_password(entry["password"]), entry["hash"], 11)
    assert verdict.ok
    assert verdict.new_hash is not None
    assert verdict.new_hash.startswith("$2b$11$")


def test_no_rehash_on_a_wrong_password_or_a_stronger_hash() -> None:
    secret = passwords.new_password("the right one")
    weak = passwords.hash_password(secret, FAST)
    assert passwords.verify(b"the wrong one", weak, 5) == passwords.Verdict(False)
    assert passwords.needs_rehash(weak, 5)
    assert not passwords.needs_rehash(weak, FAST)
    assert not passwords.needs_rehash(passwords.hash_password(secret, 5), FAST)


def test_the_new_hash_is_not_in_the_verdicts_repr() -> None:
    secret = passwords.new_password("hidden in repr")
    verdict = passwords.verify(secret, passwords.hash_password(secret, FAST), 5)
    assert verdict.new_hash is not None
    assert verdict.new_hash not in repr(verdict)
    assert verdict.new_hash[7:] not in repr(verdict)


# The dummy hash: no user, no password, or an unreadable hash cost the same work.


def test_no_stored_hash_checks_the_dummy_at_the_configured_cost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def recording(secret: bytes, stored: bytes) -> bool:
        checked.append(stored)
        return real_checkpw(secret, stored)

    monkeypatch.setattr(bcrypt, "checkpw", recording)
    assert passwords.verify(b"anything", None, 5) == passwords.Verdict(False)
    assert checked == [passwords.dummy_hash(5).encode()]
    checked.clear()
    assert passwords.verify(b"anything", "plaintext?", 6) == passwords.Verdict(False)
    assert passwords.verify(b"anything", "$2x$05$" + "a" * 53, 6) == passwords.Verdict(False)
    bad_salt = passwords.dummy_hash(5)[:28] + "P" + passwords.dummy_hash(5)[29:]
    assert passwords.verify(b"anything", bad_salt, 6) == passwords.Verdict(False)
    assert checked[:2] == [passwords.dummy_hash(6).encode()] * 2
    assert checked[-1] == passwords.dummy_hash(6).encode()


def test_the_dummy_hash_is_fixed_readable_and_matches_nothing() -> None:
    for cost in (4, 10, 12, 31):
        dummy = passwords.dummy_hash(cost)
        assert passwords.hash_cost(dummy) == cost
        assert dummy == passwords.dummy_hash(cost)
    dummy = passwords.dummy_hash(FAST)
    for guess in (b"", b"password", b"dummy", dummy.encode()[:72]):
        assert not bcrypt.checkpw(guess, dummy.encode())


def test_hash_cost_reads_only_hashes_we_verify() -> None:
    good = passwords.hash_password(b"12345678", FAST)
    assert passwords.hash_cost(good) == FAST
    assert passwords.hash_cost("$2y$" + good[4:]) == FAST
    for bad in ("", good[:-1], good + "x", "$2x$" + good[4:], "$2b$03$" + good[7:], "$1$abc"):
        assert passwords.hash_cost(bad) is None


# The cost comes from TRAMPOLIN_BCRYPT_COST.


def test_the_cost_defaults_to_12_and_reads_the_variable() -> None:
    assert passwords.configured_cost({}) == 12
    assert passwords.configured_cost({"TRAMPOLIN_BCRYPT_COST": ""}) == 12
    assert passwords.configured_cost({"TRAMPOLIN_BCRYPT_COST": " 13 "}) == 13
    assert passwords.configured_cost({"TRAMPOLIN_BCRYPT_COST": "4"}) == 4


@pytest.mark.parametrize("raw", ["3", "32", "twelve", "12.0", "-12", "١٢"])
def test_a_bad_cost_is_a_config_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"TRAMPOLIN_BCRYPT_COST=.*from 4 to 31"):
        passwords.configured_cost({"TRAMPOLIN_BCRYPT_COST": raw})
