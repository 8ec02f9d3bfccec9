"""The shared argument checks of trampolin.values (no database)."""

import uuid
from datetime import UTC, datetime

import pytest

from trampolin import values
from trampolin.errors import InvalidInput


def test_text_accepts_what_postgresql_text_holds() -> None:
    assert values.text("name", "Zoë ✓") == "Zoë ✓"
    assert values.optional_text("name", None) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1, "name must be a string, not int"),
        ("a\x00b", "name contains a NUL byte"),
        ("\udcff", "name is not valid Unicode"),
    ],
)
def test_text_names_the_field_and_the_fault(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        values.text("name", value)


def test_times_must_be_aware() -> None:
    now = datetime.now(UTC)
    assert values.aware_time("expires", now) is now
    assert values.optional_aware_time("expires", None) is None
    with pytest.raises(InvalidInput, match="expires must be timezone-aware"):
        values.aware_time("expires", datetime(2026, 1, 1))
    with pytest.raises(InvalidInput, match="expires must be a datetime, not str"):
        values.aware_time("expires", "2026-01-01")


def test_integers_and_limits() -> None:
    assert values.integer("n", 5, minimum=1) == 5
    assert values.limit(100, 100) == 100
    for bad in (True, 1.0, "1"):
        with pytest.raises(InvalidInput, match="must be an integer"):
            values.integer("n", bad)
    with pytest.raises(InvalidInput, match="limit must be between 1 and 10, not 0"):
        values.limit(0, 10)


def test_user_key_reads_a_uuid_or_an_old_id() -> None:
    user_id = uuid.uuid4()
    assert values.user_key(user_id) is user_id
    assert values.user_key(str(user_id)) == user_id
    assert values.user_key("{" + str(user_id) + "}") == user_id
    # Any other string is an adopted user's old (Prisma) id: see legacy_uuid.
    assert values.user_key("cm0abcdefghijklmnopqrstuv") == values.legacy_uuid(
        "cm0abcdefghijklmnopqrstuv"
    )
    assert values.user_key("\ud800") is None  # no row can have it
    with pytest.raises(InvalidInput, match="a user id must be a UUID or a string, not int"):
        values.user_key(42)


def test_legacy_uuid_is_a_fixed_version_8_hash() -> None:
    # Fixed forever: adopted users' ids depend on it (sql/migrations/0014_legacy_ids.sql).
    assert values.legacy_uuid("abc") == uuid.UUID("7d77e485-4399-8da4-b11f-c88108581a68")
    ids = {values.legacy_uuid(f"cm0user{i:018d}") for i in range(1000)}
    assert len(ids) == 1000
    assert {(u.version, u.variant) for u in ids} == {(8, uuid.RFC_4122)}
    assert values.legacy_uuid("") != values.legacy_uuid(" ")
    # An old id that already is a UUID in standard form keeps it.
    standard = uuid.uuid4()
    assert values.legacy_uuid(str(standard)) == standard
    assert values.legacy_uuid(standard.hex.upper()) == standard


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), ("42", 42), (" 7 ", 7), ("abc", None), (0, None), (-1, None), (2**63, None)],
)
def test_bigint_key(value: object, expected: int | None) -> None:
    assert values.bigint_key("upload id", value) == expected


def test_bigint_key_rejects_other_types() -> None:
    with pytest.raises(InvalidInput, match="upload id must be an integer, not float"):
        values.bigint_key("upload id", 1.5)


@pytest.mark.parametrize(
    "bad", ["no-at-sign", "@example.com", "a@", "a b@example.com", "x" * 320 + "@e.com", "a\x00@e"]
)
def test_email_address_rejects_what_a_person_cannot_have_meant(bad: str) -> None:
    with pytest.raises(InvalidInput, match="email"):
        values.email_address(bad)


def test_email_address_accepts_addresses_as_typed() -> None:
    assert values.email_address("Ada.Lovelace+x@Example.COM") == "Ada.Lovelace+x@Example.COM"


def test_first_line() -> None:
    assert values.first_line(ValueError("one\ntwo")) == "one"
    assert values.first_line(ValueError()) == "ValueError"
