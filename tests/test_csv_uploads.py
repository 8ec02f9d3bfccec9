"""CSV uploads: the public corpora, nasty files, all or nothing, dead importers, both twins, CLI.

Repository tests take the ``side`` fixture: each runs on CsvUploads and again on
AsyncCsvUploads (tests/twins.py); what only the async side has (async streams,
cancellation, a parse in a worker thread) is tested on its own further down.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.pq import TransactionStatus

from tests.support import ROOT, run_cli
from tests.twins import Side
from trampolin import csv_uploads, queries
from trampolin.csv_format import MAX_FIELD_CHARS
from trampolin.csv_uploads import (
    IMPORT_START_WINDOW,
    SERVER_EXPORT_COLUMNS,
    AsyncCsvUploads,
    CsvUpload,
    CsvUploads,
)
from trampolin.db import async_connect, connect
from trampolin.errors import Conflict, CsvFormatError, InvalidInput, NotFound

DATA = Path(__file__).parent / "data" / "csv"
SPECTRUM = DATA / "csv-spectrum"
CSVW = DATA / "csvw"
checks = queries.load_file(Path(__file__).parent / "sql" / "csv_uploads.sql")

MakeUser = Callable[..., uuid.UUID]
# No user can have this id: not even an adopted (legacy) one, since it is not valid Unicode.
NOT_AN_ID = "\udcff"
Export = Callable[..., tuple[int, bytes]]


class AsyncBytes:
    """An async sink collecting bytes, for export_csv on the async side."""

    def __init__(self) -> None:
        self.out = io.BytesIO()

    async def write(self, data: bytes) -> None:
        self.out.write(data)


@pytest.fixture
def uploads(side: Side) -> CsvUploads:
    """CsvUploads on the sync side, AsyncCsvUploads (driven to completion) on the async one."""
    return side.repo(CsvUploads)


@pytest.fixture
def plain(conn: psycopg.Connection[Any]) -> CsvUploads:
    """CsvUploads on the test's own sync connection (for tests of the CLI)."""
    return CsvUploads(conn)


@pytest.fixture
def export(side: Side, uploads: CsvUploads) -> Export:
    """export_csv into memory on either side: (row count, bytes written)."""

    def run(upload_id: Any, **kwargs: Any) -> tuple[int, bytes]:
        sink: Any = AsyncBytes() if side.is_async else io.BytesIO()
        count = uploads.export_csv(upload_id, sink, **kwargs)
        return count, (sink.out if side.is_async else sink).getvalue()

    return run


@pytest.fixture
def user(make_user: MakeUser) -> uuid.UUID:
    return make_user("owner@example.com")


@pytest.fixture
def load(uploads: CsvUploads, user: uuid.UUID) -> Callable[..., CsvUpload]:
    """Import bytes as a CSV file for ``user``."""

    def load_bytes(data: bytes, **kwargs: Any) -> CsvUpload:
        return uploads.import_csv(user_id=user, source=io.BytesIO(data), **kwargs)

    return load_bytes


def rows_of(uploads: CsvUploads, upload_id: int) -> list[dict[str, str]]:
    return [row.data for row in uploads.rows(upload_id, limit=100_000)]


def count_rows(conn: psycopg.Connection[Any], upload_id: int) -> int:
    row = checks.count_rows.one(conn, upload_id=upload_id)
    assert row is not None
    return int(row["n"])


def fails(load: Callable[..., CsvUpload], data: bytes, **kwargs: Any) -> tuple[CsvFormatError, int]:
    with pytest.raises(CsvFormatError) as info:
        load(data, **kwargs)
    assert info.value.upload_id is not None
    return info.value, info.value.upload_id


def csv_bytes(rows: list[list[str]], terminator: str = "\r\n", delimiter: str = ",") -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator=terminator, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode()


# -- the vendored corpora -----------------------------------------------------------------


def test_fixture_bytes_are_intact() -> None:
    """git must not have converted line endings (see tests/data/csv/.gitattributes)."""
    for line in (DATA / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(None, 1)
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


SPECTRUM_CASES = sorted(p.stem for p in (SPECTRUM / "json").glob("*.json"))


@pytest.mark.parametrize("name", SPECTRUM_CASES)
def test_csv_spectrum(name: str, uploads: CsvUploads, user: uuid.UUID, export: Export) -> None:
    expected = json.loads((SPECTRUM / "json" / f"{name}.json").read_text(encoding="utf-8"))
    if name == "null":
        # Upstream wants unquoted NULL -> "" but quoted "NULL" -> "NULL"; Python's csv (and
        # this importer) reads both as the text NULL and never produces SQL NULL.
        assert expected[2] == {"a": "5", "b": "", "c": "6"}  # from the unquoted 5,NULL,6
        expected[2]["b"] = "NULL"
    upload = uploads.import_csv(user_id=user, source=SPECTRUM / "csvs" / f"{name}.csv")
    assert upload.status == "completed"
    assert upload.filename == f"{name}.csv"
    assert upload.file_size == (SPECTRUM / "csvs" / f"{name}.csv").stat().st_size
    assert upload.total_rows == len(expected)
    assert list(upload.headers) == list(expected[0])
    assert rows_of(uploads, upload.id) == expected
    count, data = export(upload.id)
    assert count == len(expected)
    again = uploads.import_csv(user_id=user, source=io.BytesIO(data))
    assert rows_of(uploads, again.id) == expected


def test_csv_spectrum_control_chars_file_is_rejected_at_its_line(
    uploads: CsvUploads, user: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    with pytest.raises(CsvFormatError) as info:
        uploads.import_csv(user_id=user, source=SPECTRUM / "csvs" / "newlines_as_ctrl_chars")
    assert info.value.line == 4
    assert "closing quote" in str(info.value)
    assert info.value.upload_id is not None
    assert count_rows(conn, info.value.upload_id) == 0


# file -> (columns, rows) when it loads, or (line, words of the error) when it fails.
# CSVW's own dialect trims spaces and skips '#' comments; RFC 4180 (this importer) does not.
CSVW_CASES: dict[str, tuple[int, int] | tuple[int, str]] = {
    "test002.csv": (2, 8),
    "test003.csv": (2, 8),
    "test004.csv": (2, 8),
    "test019.csv": (5, 3),
    "test020.csv": (5, 2),
    "test022.csv": (5, 3),
    "test029.csv": (4, 3),
    "test035-junior-roles.csv": (7, 2),
    "test051.csv": (3, "5 fields where the header has 1"),
    "test052.csv": (2, "1 field where the header has 5"),
    "test055.csv": (5, 4),
    "test057.csv": (2, "5 fields where the header has 1"),
    "test058.csv": (3, "1 field where the header has 5"),
    "test091.csv": (3, "2 fields where the header has 3"),
    "test158.csv": (4, 2),
    "test160.csv": (3, 1),
    "test188.csv": (16, 1),
    "test189.csv": (6, 1),
    "test190.csv": (9, 1),
    "test254.csv": (2, 1),
    "test256.csv": (2, 3),
    "test257.csv": (2, 1),
    "test258.csv": (2, 2),
}


def test_every_vendored_csvw_file_has_a_case() -> None:
    assert sorted(p.name for p in CSVW.glob("*.csv")) == sorted(CSVW_CASES)


@pytest.mark.parametrize("name", sorted(CSVW_CASES))
def test_csvw(
    name: str, uploads: CsvUploads, user: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    path = CSVW / name
    first, second = CSVW_CASES[name]
    with path.open(newline="", encoding="utf-8") as f:
        records = [r for r in csv.reader(f, strict=True) if r]
    if isinstance(second, str):
        with pytest.raises(CsvFormatError) as info:
            uploads.import_csv(user_id=user, source=path)
        assert info.value.line == first
        assert second in str(info.value)
        assert info.value.upload_id is not None
        assert count_rows(conn, info.value.upload_id) == 0
        failed = uploads.get(info.value.upload_id)
        assert failed is not None
        assert failed.status == "failed"
        assert failed.error_message == str(info.value)
        return
    upload = uploads.import_csv(user_id=user, source=path)
    assert (len(upload.headers), upload.total_rows) == (first, second)
    assert list(upload.headers) == records[0]
    assert [list(r.data.values()) for r in uploads.rows(upload.id)] == records[1:]


def test_csvw_values_are_not_trimmed_and_stray_quotes_are_kept(
    uploads: CsvUploads, user: uuid.UUID
) -> None:
    spaced = uploads.import_csv(user_id=user, source=CSVW / "test003.csv")
    assert uploads.rows(spaced.id, limit=1)[0].data == {
        "Surname": " Homer ",
        "FamilyName": " Simpson ",
    }
    outside = uploads.import_csv(user_id=user, source=CSVW / "test004.csv")
    assert uploads.rows(outside.id, limit=1)[0].data["FamilyName"] == ' "Simpson" '
    header_like = uploads.import_csv(user_id=user, source=CSVW / "test257.csv")
    assert rows_of(uploads, header_like.id) == [{"foo": "foo", "bar": "bar"}]
    empty_cells = uploads.import_csv(user_id=user, source=CSVW / "test055.csv")
    assert sum(all(v == "" for v in row.values()) for row in rows_of(uploads, empty_cells.id)) == 2


# -- format rules -------------------------------------------------------------------------


def test_bom_is_dropped_once(load: Callable[..., CsvUpload], uploads: CsvUploads) -> None:
    upload = load(b"\xef\xbb\xbfname,email\nAda,\xef\xbb\xbfada@example.com\n")
    assert upload.headers == ("name", "email")
    assert rows_of(uploads, upload.id) == [{"name": "Ada", "email": "\ufeffada@example.com"}]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings(newline: bytes, load: Callable[..., CsvUpload], uploads: CsvUploads) -> None:
    data = newline.join([b"a,b", b'1,"two', b'lines"', b"3,4", b""])
    upload = load(data)
    assert rows_of(uploads, upload.id) == [
        {"a": "1", "b": "two" + newline.decode() + "lines"},
        {"a": "3", "b": "4"},
    ]
    error, _ = fails(load, newline.join([b"a,b", b'1,"x', b'y"', b"3,4,5", b""]))
    assert error.line == 4


def test_mixed_line_endings_count_physical_lines(load: Callable[..., CsvUpload]) -> None:
    error, _ = fails(load, b"a,b\r\n1,2\r3,4\n5,6\r\n7\n")
    assert error.line == 5


def test_blank_lines_are_skipped_but_blank_fields_are_values(
    load: Callable[..., CsvUpload], uploads: CsvUploads, conn: psycopg.Connection[Any]
) -> None:
    upload = load(b"\n\r\na,b,c\n\n1,,3\n,,\n\n\n")
    assert upload.total_rows == 2
    assert rows_of(uploads, upload.id) == [
        {"a": "1", "b": "", "c": "3"},
        {"a": "", "b": "", "c": ""},
    ]
    row = checks.null_values.one(conn, upload_id=upload.id)
    assert row is not None
    assert row["n"] == 0
    assert [r.row_index for r in uploads.rows(upload.id)] == [1, 2]


def test_whitespace_only_line_is_a_record(load: Callable[..., CsvUpload]) -> None:
    error, _ = fails(load, b"a,b\n1,2\n \n")
    assert error.line == 3
    assert "1 field where the header has 2" in str(error)


def test_single_column_file_keeps_empty_quoted_values(
    load: Callable[..., CsvUpload], uploads: CsvUploads, export: Export
) -> None:
    upload = load(b'only\n""\nx\n\n')
    assert rows_of(uploads, upload.id) == [{"only": ""}, {"only": "x"}]
    assert export(upload.id) == (2, b'only\n""\nx\n')


def test_header_only_file_completes_with_no_rows(load: Callable[..., CsvUpload]) -> None:
    upload = load(b"a,b\r\n")
    assert (upload.status, upload.total_rows, upload.headers) == ("completed", 0, ("a", "b"))


@pytest.mark.parametrize("data", [b"", b"\n\n\r\n", b"\xef\xbb\xbf"])
def test_a_header_row_is_required(
    data: bytes, load: Callable[..., CsvUpload], uploads: CsvUploads
) -> None:
    error, upload_id = fails(load, data)
    assert error.line == 1
    assert "header row is required" in str(error)
    failed = uploads.get(upload_id)
    assert failed is not None
    assert failed.status == "failed"


def test_duplicate_header_names_are_rejected(load: Callable[..., CsvUpload]) -> None:
    error, _ = fails(load, b"id,name,id\n1,2,3\n")
    assert error.line == 1
    assert "duplicate column name 'id'" in str(error)
    assert "columns 1 and 3" in str(error)


def test_header_names_are_case_sensitive_and_untrimmed(
    load: Callable[..., CsvUpload], uploads: CsvUploads
) -> None:
    upload = load(b"id,ID, id\n1,2,3\n")
    assert upload.headers == ("id", "ID", " id")


@pytest.mark.parametrize("header", [b"a,,c", b"a,b,", b'"",b'])
def test_empty_header_names_are_rejected(header: bytes, load: Callable[..., CsvUpload]) -> None:
    error, _ = fails(load, header + b"\n1,2,3\n")
    assert error.line == 1
    assert "has no name" in str(error)


def test_values_that_need_escaping_survive(
    load: Callable[..., CsvUpload], uploads: CsvUploads, conn: psycopg.Connection[Any]
) -> None:
    values = [
        "back\\slash",
        '"quoted"',
        "tab\there",
        "{braces},[brackets]",
        "NULL",
        "\\N",
        "a,b",
        "cr\rlf\r\nlf\n",
        "  spaced  ",
        "\\",
        "",
        "'single'",
        "\x01\x1f\x7f",
        "ünïcødé ✓ 𝄞",
    ]
    headers = [f"c{i}" for i in range(len(values))]
    upload = load(csv_bytes([headers, values]))
    assert rows_of(uploads, upload.id) == [dict(zip(headers, values, strict=True))]
    named = checks.named_row.one(conn, upload_id=upload.id, row_index=1)
    assert named is not None
    assert named["data"] == dict(zip(headers, values, strict=True))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(
        st.lists(
            st.text(
                st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                max_size=12,
            ),
            min_size=3,
            max_size=3,
        ),
        max_size=6,
    )
)
def test_any_text_round_trips(
    rows: list[list[str]], load: Callable[..., CsvUpload], uploads: CsvUploads, export: Export
) -> None:
    headers = ["a", "b", "c"]
    upload = load(csv_bytes([headers, *rows]))
    assert [list(r.data.values()) for r in uploads.rows(upload.id)] == rows
    count, data = export(upload.id)
    assert count == len(rows)
    reread = list(csv.reader(io.StringIO(data.decode(), newline=""), strict=True))
    assert reread == [headers, *rows]


# -- malformed files: all or nothing ------------------------------------------------------


def assert_nothing_loaded(
    conn: psycopg.Connection[Any], uploads: CsvUploads, upload_id: int, error: CsvFormatError
) -> None:
    assert count_rows(conn, upload_id) == 0
    failed = uploads.get(upload_id)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.total_rows == 0
    assert failed.error_message == str(error)
    assert str(error).startswith(f"line {error.line}: ")
    assert checks.ping.one(conn) == {"one": 1}  # the connection is still usable


def test_ragged_row_loads_nothing(
    load: Callable[..., CsvUpload], uploads: CsvUploads, conn: psycopg.Connection[Any]
) -> None:
    rows = b"".join(b"%d,x\n" % i for i in range(5000))
    error, upload_id = fails(load, b"a,b\n" + rows + b'1,"multi\nline",3\n' + rows)
    assert error.line == 5002
    assert "3 fields where the header has 2" in str(error)
    assert_nothing_loaded(conn, uploads, upload_id, error)
    good = load(b"a,b\n1,2\n")
    assert good.status == "completed"


def test_too_few_fields(load: Callable[..., CsvUpload]) -> None:
    error, _ = fails(load, b"a,b,c\n1,2,3\n4,5\n")
    assert (error.line, "2 fields where the header has 3" in str(error)) == (3, True)


def test_unterminated_quote(
    load: Callable[..., CsvUpload], uploads: CsvUploads, conn: psycopg.Connection[Any]
) -> None:
    error, upload_id = fails(load, b'a,b\n1,2\n3,"never closed\n4,5\n6,7\n')
    assert error.line == 5
    assert "unterminated quote" in str(error)
    assert "starts on line 3" in str(error)
    assert_nothing_loaded(conn, uploads, upload_id, error)


def test_character_after_closing_quote(load: Callable[..., CsvUpload]) -> None:
    error, _ = fails(load, b'a,b\n1,2\n"3"x,4\n')
    assert error.line == 3
    assert "closing quote" in str(error)


def test_quote_inside_an_unquoted_field_is_kept(
    load: Callable[..., CsvUpload], uploads: CsvUploads
) -> None:
    upload = load(b'a,b\n5" screen,x"y\n')
    assert rows_of(uploads, upload.id) == [{"a": '5" screen', "b": 'x"y'}]


def test_bad_utf8_names_line_and_byte_and_the_option(
    load: Callable[..., CsvUpload], uploads: CsvUploads, conn: psycopg.Connection[Any]
) -> None:
    error, upload_id = fails(load, b'a,b\n1,2\n3,"multi\nline caf\xe9"\n')
    assert error.line == 4
    assert "byte 0xe9 is not valid utf-8 (pass --encoding, e.g. --encoding cp1252)" in str(error)
    assert_nothing_loaded(conn, uploads, upload_id, error)


def test_bad_utf8_in_header(load: Callable[..., CsvUpload]) -> None:
    error, _ = fails(load, b"a,\xff\n1,2\n")
    assert error.line == 1
    assert "0xff" in str(error)


def test_an_encoding_can_be_given(load: Callable[..., CsvUpload], uploads: CsvUploads) -> None:
    upload = load("prénom,ville\nJosé,Malmö\n".encode("latin-1"), encoding="latin-1")
    assert rows_of(uploads, upload.id) == [{"prénom": "José", "ville": "Malmö"}]
    cp = load("name\nsmart “quotes”\n".encode("cp1252"), encoding="cp1252")
    assert rows_of(uploads, cp.id) == [{"name": "smart “quotes”"}]
    error, _ = fails(load, b"name\nok\n\x81\n", encoding="cp1252")
    assert (error.line, "0x81 is not valid cp1252" in str(error)) == (3, True)


def test_unknown_encoding(load: Callable[..., CsvUpload]) -> None:
    with pytest.raises(InvalidInput, match="unknown encoding"):
        load(b"a\n1\n", encoding="no-such-codec")
    with pytest.raises(InvalidInput, match="unknown encoding"):
        load(b"a\n1\n", encoding="utf\x008")
    with pytest.raises(InvalidInput, match="not a text encoding"):
        load(b"a\n1\n", encoding="base64")


def test_utf16_without_a_bom_is_a_format_error(
    load: Callable[..., CsvUpload], uploads: CsvUploads, conn: psycopg.Connection[Any]
) -> None:
    error, upload_id = fails(load, b"a,b\n1,2\n", encoding="utf-16")
    assert error.line == 1
    assert "cannot decode the file as utf-16" in str(error)
    assert "BOM" in str(error)
    assert_nothing_loaded(conn, uploads, upload_id, error)
    good = load("a,b\n1,2\n".encode("utf-16"), encoding="utf-16")  # with its BOM
    assert rows_of(uploads, good.id) == [{"a": "1", "b": "2"}]


def test_nul_byte_is_rejected_naming_line_and_column(
    load: Callable[..., CsvUpload], uploads: CsvUploads, conn: psycopg.Connection[Any]
) -> None:
    error, upload_id = fails(load, b'a,b\n1,2\n3,"x\ny\x00z"\n')
    assert error.line == 4
    assert "NUL byte" in str(error)
    assert "'b'" in str(error)
    assert_nothing_loaded(conn, uploads, upload_id, error)
    binary, _ = fails(load, b"a,\x00\n1,2\n")  # a NUL in the header line: not a text file
    assert str(binary) == (
        "not a text CSV: NUL byte (0x00) at byte 3 of the file; save it as CSV first"
    )


def test_a_text_mode_source_is_refused(uploads: CsvUploads, user: uuid.UUID) -> None:
    with pytest.raises(InvalidInput, match="binary"):
        uploads.import_csv(user_id=user, source=io.StringIO("a\n1\n"))  # type: ignore[arg-type]


def test_unknown_user(uploads: CsvUploads) -> None:
    with pytest.raises(NotFound, match="no user"):
        uploads.import_csv(user_id=uuid.uuid4(), source=io.BytesIO(b"a\n1\n"))
    with pytest.raises(InvalidInput, match="not a user id"):
        uploads.import_csv(user_id=NOT_AN_ID, source=io.BytesIO(b"a\n1\n"))


def test_missing_file(uploads: CsvUploads, user: uuid.UUID, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        uploads.import_csv(user_id=user, source=tmp_path / "absent.csv")


# -- limits -------------------------------------------------------------------------------


def test_1700_columns(
    load: Callable[..., CsvUpload],
    uploads: CsvUploads,
    conn: psycopg.Connection[Any],
    export: Export,
) -> None:
    headers = [f"column_{i}" for i in range(1700)]
    rows = [[f"r{r}c{i}" if i % 7 else "" for i in range(1700)] for r in range(3)]
    upload = load(csv_bytes([headers, *rows]))
    assert len(upload.headers) == 1700
    assert [list(r.data.values()) for r in uploads.rows(upload.id)] == rows
    named = checks.named_row.one(conn, upload_id=upload.id, row_index=2)
    assert named is not None
    assert named["data"]["column_1699"] == "r1c1699"
    count, data = export(upload.id)
    assert count == 3  # a wide upload: the client writes the CSV
    assert list(csv.reader(io.StringIO(data.decode(), newline=""))) == [headers, *rows]


@pytest.mark.parametrize("sep", [",", ";", "\t"])
@pytest.mark.parametrize("width", [SERVER_EXPORT_COLUMNS, SERVER_EXPORT_COLUMNS + 1])
def test_both_export_paths_round_trip(
    width: int, sep: str, load: Callable[..., CsvUpload], export: Export
) -> None:
    tricky = ["", '"', ",", ";", "\r\n", "\\.", "NULL", " x ", "é", "{a,b}", "\\N", "'", "\t"]
    headers = [f"h{i}" if i % 5 else f'h {i}, "q";' for i in range(width)]
    rows = [[tricky[(r + i) % len(tricky)] for i in range(width)] for r in range(30)]
    upload = load(csv_bytes([headers, *rows]))
    count, data = export(upload.id, delimiter="tab" if sep == "\t" else sep)
    assert count == 30
    reread = csv.reader(io.StringIO(data.decode(), newline=""), strict=True, delimiter=sep)
    assert list(reread) == [headers, *rows]


@pytest.mark.parametrize("size", [200 * 1024, 5 * 1024 * 1024])
def test_big_fields(
    size: int, load: Callable[..., CsvUpload], uploads: CsvUploads, export: Export
) -> None:
    big = ('quote" comma, newline\n é ' * (size // 26 + 1))[:size]
    upload = load(csv_bytes([["id", "blob", "after"], ["1", big, "x"], ["2", "small", big[:10]]]))
    assert upload.total_rows == 2
    first = uploads.rows(upload.id, limit=1)[0]
    assert first.data["blob"] == big
    assert first.data["after"] == "x"
    reread = list(csv.reader(io.StringIO(export(upload.id)[1].decode(), newline="")))
    assert reread[1][1] == big


def test_field_over_the_limit_is_an_error(load: Callable[..., CsvUpload]) -> None:
    data = b'a,b\n1,2\n3,"' + b"x" * (MAX_FIELD_CHARS + 1) + b'"\n'
    error, _ = fails(load, data)
    assert error.line == 3
    assert "longer than 16 MiB" in str(error)


# -- metadata, reading, export, delete ----------------------------------------------------


def test_metadata_and_progress(uploads: CsvUploads, user: uuid.UUID, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(b"name\n" + b"".join(b"person %d\n" % i for i in range(300_000)))
    seen: list[int] = []
    upload = uploads.import_csv(user_id=user, source=path, progress=seen.append)
    assert upload.filename == "people.csv"
    assert upload.file_size == path.stat().st_size
    assert upload.user_id == user
    assert upload.error_message is None
    assert upload.created_at <= upload.updated_at
    assert len(seen) > 1
    assert seen == sorted(seen)
    assert seen[-1] == path.stat().st_size
    with path.open("rb") as f:
        named = uploads.import_csv(user_id=user, source=f, filename="renamed.csv")
        assert named.filename == "renamed.csv"
    assert uploads.import_csv(user_id=user, source=io.BytesIO(b"a\n")).filename == "upload.csv"


def test_get_and_list_respect_ownership(
    uploads: CsvUploads, user: uuid.UUID, make_user: MakeUser, load: Callable[..., CsvUpload]
) -> None:
    owner = user
    other = make_user("other@example.com")
    first = load(b"a\n1\n")
    second = load(b"a\n2\n")
    theirs = uploads.import_csv(user_id=other, source=io.BytesIO(b"a\n3\n"))
    assert uploads.get(first.id) == first
    assert uploads.get(first.id, user_id=owner) == first
    assert uploads.get(first.id, user_id=other) is None
    assert uploads.get(10**12) is None
    assert [u.id for u in uploads.list_for_user(owner)] == [second.id, first.id]
    assert [u.id for u in uploads.list_for_user(other)] == [theirs.id]
    assert uploads.list_for_user(uuid.uuid4()) == []
    assert uploads.list_for_user(str(other)) == [theirs]
    with pytest.raises(InvalidInput, match="not a user id"):
        uploads.get(first.id, user_id=NOT_AN_ID)


def test_ids_that_cannot_be_upload_ids_are_unknown(
    load: Callable[..., CsvUpload], uploads: CsvUploads
) -> None:
    upload = load(b"a\n1\n")
    assert uploads.get(str(upload.id)) == upload  # a decimal string is the number
    for unknown in ("abc", "", " ", "1.5", "-1", "1e3", "\u0661", "9" * 5000, 0, -1, 2**63, 10**40):
        assert uploads.get(unknown) is None, unknown
        assert uploads.get(unknown, user_id=upload.user_id) is None, unknown
        assert uploads.rows(unknown) == [], unknown
        with pytest.raises(NotFound):
            uploads.export_csv(unknown, io.BytesIO())
        uploads.delete(unknown)  # nothing happens
    for wrong in (True, 1.0, None, b"1"):
        with pytest.raises(InvalidInput, match="must be an integer"):
            uploads.get(wrong)  # type: ignore[arg-type]
    assert uploads.get(upload.id) == upload


def test_rows_cursor_and_limit_must_be_integers(
    load: Callable[..., CsvUpload], uploads: CsvUploads
) -> None:
    upload = load(b"a\n1\n2\n")
    for after in ("x", "1", 1.5, None, True):
        with pytest.raises(InvalidInput, match="after"):
            uploads.rows(upload.id, after=after)  # type: ignore[arg-type]
    for limit in ("x", 0, -1, 2.0, None, False):
        with pytest.raises(InvalidInput, match="limit"):
            uploads.rows(upload.id, limit=limit)  # type: ignore[arg-type]
    assert [r.row_index for r in uploads.rows(upload.id, after=-5)] == [1, 2]
    assert uploads.rows(upload.id, after=2**70) == []
    assert [r.row_index for r in uploads.rows(upload.id, limit=10**30)] == [1, 2]


def test_rows_keyset(load: Callable[..., CsvUpload], uploads: CsvUploads) -> None:
    upload = load(b"n,sq\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(1, 2501)))
    pages: list[int] = []
    after = 0
    while page := uploads.rows(upload.id, after=after):
        pages.append(len(page))
        assert [r.row_index for r in page] == list(range(after + 1, after + len(page) + 1))
        after = page[-1].row_index
    assert pages == [1000, 1000, 500]
    assert uploads.rows(upload.id, after=2499, limit=5)[0].data == {"n": "2500", "sq": "6250000"}
    assert uploads.rows(upload.id, after=2500) == []
    assert uploads.rows(10**12) == []
    with pytest.raises(InvalidInput):
        uploads.rows(upload.id, limit=0)


def test_export_is_rfc4180_and_round_trips(
    load: Callable[..., CsvUpload], uploads: CsvUploads, export: Export
) -> None:
    upload = load(b'"a b",c\r\n1,"x,y"\r\n"say ""hi""",\r\n"multi\r\nline",z\r\n')
    count, data = export(upload.id)
    assert count == 3
    assert data == b'a b,c\n1,"x,y"\n"say ""hi""",""\n"multi\r\nline",z\n'
    again = load(data)
    assert rows_of(uploads, again.id) == rows_of(uploads, upload.id)


def test_export_refuses_unknown_and_failed_uploads(
    load: Callable[..., CsvUpload], uploads: CsvUploads
) -> None:
    with pytest.raises(NotFound):
        uploads.export_csv(10**12, io.BytesIO())
    _, upload_id = fails(load, b"a,b\n1\n")
    with pytest.raises(InvalidInput, match="failed"):
        uploads.export_csv(upload_id, io.BytesIO())


def test_delete_a_large_upload(
    uploads: CsvUploads, user: uuid.UUID, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    path = tmp_path / "million.csv"
    with path.open("wb") as f:
        f.write(b"i,v\n")
        for start in range(0, 1_000_000, 100_000):
            f.write(b"".join(b"%d,x\n" % i for i in range(start, start + 100_000)))
    upload = uploads.import_csv(user_id=user, source=path)
    keep = uploads.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n"))
    assert upload.total_rows == 1_000_000
    uploads.delete(upload.id)
    assert uploads.get(upload.id) is None
    assert count_rows(conn, upload.id) == 0
    assert count_rows(conn, keep.id) == 1
    uploads.delete(upload.id)  # unknown: nothing happens


def test_deleting_the_user_deletes_uploads_and_rows(
    load: Callable[..., CsvUpload], user: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    upload = load(b"a\n1\n2\n")
    assert checks.delete_user.execrows(conn, user_id=user) == 1
    assert count_rows(conn, upload.id) == 0


@pytest.mark.parametrize("truncate", ["truncate_users", "truncate_uploads"])
def test_truncate_cascade_leaves_no_orphan_rows(
    truncate: str,
    load: Callable[..., CsvUpload],
    uploads: CsvUploads,
    conn: psycopg.Connection[Any],
    make_user: MakeUser,
) -> None:
    first = load(b"a\n1\n2\n")
    load(b"a\n3\n")
    getattr(checks, truncate).exec(conn)  # TRUNCATE fires no row-level delete trigger
    assert checks.all_rows.one(conn) == {"n": 0}
    owner = make_user("again@example.com")
    again = uploads.import_csv(user_id=owner, source=io.BytesIO(b"b\n4\n"))
    if truncate == "truncate_uploads":  # RESTART IDENTITY: the id is reused
        assert again.id == first.id
    assert rows_of(uploads, again.id) == [{"b": "4"}]


# -- dialects, byte-order marks, binary files ---------------------------------------------


def test_a_semicolon_file_is_detected_and_said(
    uploads: CsvUploads, user: uuid.UUID, export: Export
) -> None:
    said: list[str] = []
    data = csv_bytes([["name", "city"], ["Ada", "London; UK"], ["Zoë", ""]], delimiter=";")
    upload = uploads.import_csv(user_id=user, source=io.BytesIO(data), notice=said.append)
    assert rows_of(uploads, upload.id) == [
        {"name": "Ada", "city": "London; UK"},
        {"name": "Zoë", "city": ""},
    ]
    assert said == [
        "detected the delimiter ';' from the header line (give the delimiter if that is wrong)"
    ]
    assert export(upload.id, delimiter=";") == (2, b'name;city\nAda;"London; UK"\nZo\xc3\xab;""\n')
    assert export(upload.id, delimiter="tab") == (
        2,
        b'name\tcity\nAda\tLondon; UK\nZo\xc3\xab\t""\n',
    )


def test_a_given_delimiter_is_used_as_is(
    load: Callable[..., CsvUpload], uploads: CsvUploads
) -> None:
    tab = load(b'a;b\tc\n"1;2"\t3\n', delimiter="tab")
    assert rows_of(uploads, tab.id) == [{"a;b": "1;2", "c": "3"}]
    comma = load(b"a;b\n1;2\n", delimiter=",")
    assert comma.headers == ("a;b",)


def test_a_semicolon_file_is_all_or_nothing_too(
    load: Callable[..., CsvUpload], uploads: CsvUploads, conn: psycopg.Connection[Any]
) -> None:
    error, upload_id = fails(load, b'a;b\n1;2\n"3"x;4\n')
    assert error.line == 3
    assert "other than a semicolon or a line end" in str(error)
    assert_nothing_loaded(conn, uploads, upload_id, error)


def test_a_bad_delimiter_writes_nothing(
    load: Callable[..., CsvUpload], uploads: CsvUploads, user: uuid.UUID
) -> None:
    with pytest.raises(InvalidInput, match=r"unknown delimiter '\|'"):
        load(b"a|b\n1|2\n", delimiter="|")
    assert uploads.list_for_user(user) == []
    upload = load(b"a\n1\n")
    with pytest.raises(InvalidInput, match="unknown delimiter"):
        uploads.export_csv_chunks(upload.id, delimiter="|")


@pytest.mark.parametrize(
    ("codec", "mark", "label"),
    [
        ("utf-8", codecs.BOM_UTF8, "UTF-8"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "UTF-16 LE"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "UTF-16 BE"),
        ("utf-32-le", codecs.BOM_UTF32_LE, "UTF-32 LE"),
        ("utf-32-be", codecs.BOM_UTF32_BE, "UTF-32 BE"),
    ],
)
def test_a_byte_order_mark_sets_the_encoding(
    codec: str, mark: bytes, label: str, uploads: CsvUploads, user: uuid.UUID
) -> None:
    said: list[str] = []
    data = mark + "name\tcity\nZoë\tKraków\n".encode(codec)
    upload = uploads.import_csv(user_id=user, source=io.BytesIO(data), notice=said.append)
    assert rows_of(uploads, upload.id) == [{"name": "Zoë", "city": "Kraków"}]
    assert upload.file_size == len(data)
    assert said[0] == f"found a {label} byte-order mark: reading as {label}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00[Content_Types].xml\x00\x00xl/workbook.xml",
         "not a text CSV: the file is an Excel workbook (.xlsx); save it as CSV first"),
        (b"\x7fELF\x02\x01\x01\x00" + bytes(200),
         "not a text CSV: the file is an executable program (ELF); save it as CSV first"),
        (bytes(range(256)) * 8,
         "not a text CSV: NUL byte (0x00) at byte 1 of the file; save it as CSV first"),
    ],
)  # fmt: skip
def test_a_binary_file_fails_with_one_short_line(
    data: bytes,
    message: str,
    load: Callable[..., CsvUpload],
    uploads: CsvUploads,
    conn: psycopg.Connection[Any],
) -> None:
    error, upload_id = fails(load, data)
    assert str(error) == message
    failed = uploads.get(upload_id)
    assert failed is not None
    assert (failed.status, failed.error_message) == ("failed", message)
    assert count_rows(conn, upload_id) == 0


def test_random_bytes_fail_with_one_short_line(load: Callable[..., CsvUpload]) -> None:
    error, _ = fails(load, os.urandom(64 * 1024))
    assert len(str(error)) < 120
    assert str(error).startswith("not a text CSV")


# -- sources ------------------------------------------------------------------------------


def test_an_iterator_of_bytes_is_a_source(uploads: CsvUploads, user: uuid.UUID) -> None:
    parts = [b"a,", b"b\n1", b"", b",2\n"]
    upload = uploads.import_csv(user_id=user, source=iter(parts))
    assert (upload.filename, rows_of(uploads, upload.id)) == ("upload.csv", [{"a": "1", "b": "2"}])


def test_an_async_stream_is_for_the_async_side_only(uploads: CsvUploads, side: Side) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"a\n1\n"

    if side.is_async:
        pytest.skip("tested with the async streams below")
    stream = body()
    with pytest.raises(InvalidInput, match="needs AsyncCsvUploads"):
        uploads.import_csv(user_id=uuid.uuid4(), source=stream)  # type: ignore[arg-type]
    asyncio.run(stream.aclose())  # type: ignore[attr-defined]


# -- transactions -------------------------------------------------------------------------


def test_inside_a_callers_transaction(side: Side, db_url: str, user: uuid.UUID) -> None:
    with side.connect(CsvUploads, autocommit=False) as uploads:
        with uploads.conn.transaction():
            good = uploads.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n2\n"))
            with pytest.raises(CsvFormatError) as info:
                uploads.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n2,3\n"))
            assert uploads.get(good.id) == good  # the transaction is still usable
        bad_id = info.value.upload_id
        assert bad_id is not None
        uploads.conn.rollback()
    with connect(db_url, autocommit=True) as other:
        seen = CsvUploads(other)
        assert [r.data for r in seen.rows(good.id)] == [{"a": "1"}, {"a": "2"}]
        failed = seen.get(bad_id)
        assert failed is not None
        assert failed.status == "failed"
        assert count_rows(other, bad_id) == 0


def test_a_callers_rollback_undoes_the_import(side: Side, user: uuid.UUID) -> None:
    with side.connect(CsvUploads, autocommit=False) as uploads:
        assert uploads.get(1) is None  # a transaction is open: import_csv uses savepoints
        upload = uploads.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n"))
        uploads.conn.rollback()
        assert uploads.get(upload.id) is None


def status(uploads: CsvUploads) -> TransactionStatus:
    return uploads.conn.info.transaction_status


def test_a_non_autocommit_connection_is_never_committed(
    side: Side, conn: psycopg.Connection[Any], user: uuid.UUID
) -> None:
    kept = CsvUploads(conn).import_csv(user_id=user, source=io.BytesIO(b"a\n1\n"))
    stale = checks.insert_stale_upload.one(conn, user_id=user)
    assert stale is not None
    seen = CsvUploads(conn)  # autocommit: sees only what was committed
    with side.connect(CsvUploads, autocommit=False) as uploads:  # no transaction open
        assert status(uploads) == TransactionStatus.IDLE
        uploads.delete(kept.id)
        assert status(uploads) == TransactionStatus.INTRANS  # still the caller's
        assert uploads.get(kept.id) is None
        uploads.conn.rollback()
        assert seen.get(kept.id) == kept
        assert count_rows(conn, kept.id) == 1

        [failed] = uploads.cleanup()
        assert failed.id == stale["id"]
        uploads.conn.rollback()
        stale_upload = seen.get(stale["id"])
        assert stale_upload is not None
        assert stale_upload.status == "processing"

        made = uploads.import_csv(user_id=user, source=io.BytesIO(b"a\n2\n"))
        assert status(uploads) == TransactionStatus.INTRANS
        assert seen.get(made.id) is None  # not committed
        assert len(b"".join(uploads.export_csv_chunks(made.id))) == 4
        uploads.conn.rollback()
        assert uploads.get(made.id) is None

        uploads.delete(kept.id)
        uploads.conn.commit()  # the caller's commit decides
        assert seen.get(kept.id) is None
        assert count_rows(conn, kept.id) == 0


class _DeleteUserBeforeLock:
    """The named queries of csv_uploads where, just before the loading block, another
    session deletes the importing user (and so the upload that was already committed)."""

    def __init__(self, queries: Any, db_url: str, user_id: uuid.UUID) -> None:
        self._queries = queries
        self._db_url = db_url
        self._user_id = user_id

    def __getattr__(self, name: str) -> Any:
        query = getattr(self._queries, name)
        if name != "lock_upload":
            return query
        outer = self

        class Wrapped:
            def exec(self, conn: Any, **params: Any) -> Any:
                with connect(outer._db_url, autocommit=True) as other:
                    assert checks.delete_user.execrows(other, user_id=outer._user_id) == 1
                return query.exec(conn, **params)  # an awaitable on the async side

        return Wrapped()


def test_import_whose_user_was_deleted_meanwhile_says_so(
    db_url: str, uploads: CsvUploads, user: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_uploads, "_q", _DeleteUserBeforeLock(csv_uploads._q, db_url, user))
    with pytest.raises(Conflict, match="was deleted") as info:
        uploads.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n"))
    assert "cleanup" not in str(info.value)
    assert uploads.list_for_user(user) == []


# -- dead importers -----------------------------------------------------------------------

CHILD = """
import asyncio, sys
from trampolin.csv_uploads import AsyncCsvUploads, CsvUploads
from trampolin.db import async_connect, connect

def progress(done):
    print(done, flush=True)

async def run_async():
    async with await async_connect(sys.argv[1], autocommit=True) as conn:
        await AsyncCsvUploads(conn).import_csv(
            user_id=sys.argv[2], source=sys.stdin.buffer, progress=progress
        )

if sys.argv[3] == "async":
    asyncio.run(run_async())
else:
    with connect(sys.argv[1], autocommit=True) as conn:
        CsvUploads(conn).import_csv(user_id=sys.argv[2], source=sys.stdin.buffer, progress=progress)
"""


def wait_until_unlocked(conn: psycopg.Connection[Any], upload_id: int) -> None:
    """Wait until the server has ended the dead importer's transaction (and so its lock)."""
    with conn.transaction():
        checks.lock_timeout.exec(conn)
        checks.hold_upload_lock.exec(conn, upload_id=upload_id)


def wait_until_older_than(conn: psycopg.Connection[Any], upload_id: int, seconds: float) -> None:
    """Wait (no longer than a minute) until the upload is that old, by the server's clock."""
    deadline = time.monotonic() + 60
    while not (checks.upload_age_at_least.one(conn, upload_id=upload_id, seconds=seconds) or {})[
        "old"
    ]:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_killed_import_leaves_no_rows_and_the_next_import_fails_it(
    side: Side, db_url: str, conn: psycopg.Connection[Any], uploads: CsvUploads, user: uuid.UUID
) -> None:
    chunk = b"".join(b'%d,"some, text",more\n' % i for i in range(100_000))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, str(user), side.name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        child.stdin.write(b"id,text,more\n" + chunk * 2)  # ~4.7 MB; never closed: EOF never comes
        child.stdin.flush()
        for line in child.stdout:  # wait until several MiB were read and their rows sent
            if int(line) >= 3 * 1024 * 1024:
                break
        [upload] = checks.processing_uploads.many(conn, user_id=user)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    upload_id = upload["id"]
    wait_until_unlocked(conn, upload_id)
    assert count_rows(conn, upload_id) == 0
    stale = uploads.get(upload_id)
    assert stale is not None
    assert stale.status == "processing"
    assert uploads.cleanup(older_than=3600) == []  # too recent for that grace
    wait_until_older_than(conn, upload_id, IMPORT_START_WINDOW)
    uploads.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n"))  # the user's next import
    failed = uploads.get(upload_id)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error_message == "import abandoned: the importing process died before it finished"
    assert uploads.cleanup(older_than=0) == []


def processing(conn: psycopg.Connection[Any], user_id: uuid.UUID, *, stale: bool = True) -> int:
    """A 'processing' upload with no importer: an hour old (stale) or just made."""
    query = checks.insert_stale_upload if stale else checks.insert_processing_upload
    row = query.one(conn, user_id=user_id)
    assert row is not None
    return int(row["id"])


def test_the_next_import_leaves_live_young_and_others_uploads_alone(
    db_url: str,
    conn: psycopg.Connection[Any],
    uploads: CsvUploads,
    user: uuid.UUID,
    make_user: MakeUser,
) -> None:
    stale, young, live = (
        processing(conn, user),
        processing(conn, user, stale=False),
        processing(conn, user),
    )
    other = make_user()
    processing(conn, other)
    with connect(db_url) as importer, importer.transaction():
        checks.hold_upload_lock.exec(importer, upload_id=live)  # as a live importer does
        uploads.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n"))
    status = {u.id: u.status for u in CsvUploads(conn).list_for_user(user)}
    assert status[stale] == "failed"
    assert status[young] == status[live] == "processing"
    assert [u.status for u in CsvUploads(conn).list_for_user(other)] == ["processing"]


def test_cleanup_of_one_user_or_one_upload(
    conn: psycopg.Connection[Any], uploads: CsvUploads, user: uuid.UUID, make_user: MakeUser
) -> None:
    other = make_user()
    mine, also_mine, theirs = (
        processing(conn, user),
        processing(conn, user),
        processing(conn, other),
    )
    assert [u.id for u in uploads.cleanup(older_than=0, upload_id=str(mine))] == [mine]
    assert uploads.cleanup(older_than=0, upload_id="abc") == []
    assert [u.id for u in uploads.cleanup(older_than=0, user_id=user)] == [also_mine]
    assert [u.id for u in uploads.cleanup(older_than=0)] == [theirs]
    with pytest.raises(InvalidInput, match="not a user id"):
        uploads.cleanup(user_id=NOT_AN_ID)


def test_cleanup_leaves_live_and_finished_imports_alone(
    db_url: str, conn: psycopg.Connection[Any], uploads: CsvUploads, user: uuid.UUID
) -> None:
    done = uploads.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n"))
    row = checks.insert_processing_upload.one(conn, user_id=user)
    assert row is not None
    live = row["id"]
    with connect(db_url) as importer, importer.transaction():
        checks.hold_upload_lock.exec(importer, upload_id=live)  # as a live importer does
        assert uploads.cleanup(older_than=0) == []
    assert [u.id for u in uploads.cleanup(older_than=0)] == [live]
    assert uploads.get(done.id) == done


def test_cleanup_grace_must_be_sane(uploads: CsvUploads) -> None:
    for bad in (float("nan"), float("inf"), -5, -0.5, 1e300, 31 * 86400, "60", True, None):
        with pytest.raises(InvalidInput, match="older_than"):
            uploads.cleanup(older_than=bad)  # type: ignore[arg-type]
    assert uploads.cleanup(older_than=30 * 86400) == []
    assert uploads.cleanup(older_than=0) == []


def test_four_concurrent_imports(side: Side, db_url: str, make_user: MakeUser) -> None:
    users = [make_user(f"concurrent{i}@example.com") for i in range(4)]
    results: dict[int, CsvUpload] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        data = b"user,n\n" + b"".join(b"%d,%d\n" % (i, n) for n in range(20_000 + i * 1000))
        try:
            with side.connect(CsvUploads) as own:
                results[i] = own.import_csv(user_id=users[i], source=io.BytesIO(data))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with connect(db_url, autocommit=True) as conn:
        uploads = CsvUploads(conn)
        for i, upload in results.items():
            assert upload.status == "completed"
            assert upload.user_id == users[i]
            assert upload.total_rows == 20_000 + i * 1000
            assert count_rows(conn, upload.id) == upload.total_rows
            assert {r.data["user"] for r in uploads.rows(upload.id, limit=100_000)} == {str(i)}


def test_delete_says_what_went(load: Callable[..., CsvUpload], uploads: CsvUploads) -> None:
    upload = load(b"a\n1\n2\n")
    deleted = uploads.delete(upload.id)
    assert deleted is not None
    assert (deleted.id, deleted.total_rows, deleted.status) == (upload.id, 2, "completed")
    assert uploads.delete(upload.id) is None


# -- streaming export ---------------------------------------------------------------------


def test_export_chunks_stream_the_same_csv(
    load: Callable[..., CsvUpload], uploads: CsvUploads, export: Export
) -> None:
    upload = load(b"n,text\n" + b"".join(b'%d,"line\nbreak, ""q"""\n' % i for i in range(30_000)))
    chunks = list(uploads.export_csv_chunks(upload.id))
    assert len(chunks) > 2  # in pieces of about 256 KiB
    assert b"".join(chunks) == export(upload.id)[1]
    with pytest.raises(NotFound):  # raised by the call itself, before any chunk
        uploads.export_csv_chunks(10**12)


def test_an_export_stopped_early_leaves_the_connection_usable(
    plain: CsvUploads, user: uuid.UUID
) -> None:
    source = io.BytesIO(b"n\n" + b"".join(b"%d\n" % i for i in range(300_000)))
    upload = plain.import_csv(user_id=user, source=source)
    chunks = plain.export_csv_chunks(upload.id)
    assert next(chunks) == b"n\n"
    assert next(chunks).startswith(b"0\n1\n")
    chunks.close()
    assert plain.get(upload.id) == upload
    assert plain.rows(upload.id, limit=1)[0].data == {"n": "0"}


# -- the async side: streams, cancellation, the parse thread ------------------------------


def run_async(db_url: str, work: Callable[[AsyncCsvUploads], Any]) -> Any:
    """``await work(AsyncCsvUploads(aconn))`` on a new event loop and connection."""

    async def main() -> Any:
        async with await async_connect(db_url, autocommit=True) as aconn:
            return await work(AsyncCsvUploads(aconn))

    return asyncio.run(main())


def parse_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "trampolin-csv-parse"]


def test_an_async_stream_is_imported_with_progress_on_the_loop(
    db_url: str, user: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    rows = 50_000
    called_from: set[int] = set()
    said: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        yield codecs.BOM_UTF8 + b"n;text\r\n"
        for start in range(0, rows, 1000):
            yield b"".join(b'%d;"x;\r\ny"\r\n' % i for i in range(start, start + 1000))
            yield b""  # a stream may send empty chunks

    def progress(done: int) -> None:
        called_from.add(threading.get_ident())

    async def work(uploads: AsyncCsvUploads) -> CsvUpload:
        return await uploads.import_csv(
            user_id=user, source=body(), progress=progress, notice=said.append
        )

    upload = run_async(db_url, work)
    assert (upload.status, upload.total_rows, upload.filename) == ("completed", rows, "upload.csv")
    assert CsvUploads(conn).rows(upload.id, after=rows - 1) == [
        csv_uploads.CsvRow(upload.id, rows, {"n": str(rows - 1), "text": "x;\r\ny"})
    ]
    assert called_from == {threading.get_ident()}  # the loop's thread, not the parse's
    assert said == [
        "found a UTF-8 byte-order mark: reading as UTF-8",
        "detected the delimiter ';' from the header line (give the delimiter if that is wrong)",
    ]
    assert parse_threads() == []


def test_a_cancelled_async_import_fails_its_upload_and_stops_its_thread(
    db_url: str, user: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    stream_closed = threading.Event()

    async def stalled() -> AsyncIterator[bytes]:
        try:
            yield b"n\n" + b"".join(b"%d\n" % i for i in range(400_000))
            await asyncio.Event().wait()  # a client that stops sending
            yield b"never"
        finally:
            stream_closed.set()

    async def work(uploads: AsyncCsvUploads) -> CsvUpload:
        seen = asyncio.Event()
        task = asyncio.create_task(
            uploads.import_csv(user_id=user, source=stalled(), progress=lambda _: seen.set())
        )
        await seen.wait()  # rows are being sent
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [upload] = await uploads.list_for_user(user)  # the connection is usable
        return upload

    upload = run_async(db_url, work)
    assert upload.status == "failed"
    assert upload.error_message == "import aborted: CancelledError"
    assert count_rows(conn, upload.id) == 0
    assert stream_closed.is_set()
    assert parse_threads() == []


def test_an_async_stream_that_fails_aborts_the_import(
    db_url: str, user: uuid.UUID, conn: psycopg.Connection[Any]
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"n\n1\n2\n"
        raise ConnectionResetError("client went away")

    async def work(uploads: AsyncCsvUploads) -> CsvUpload | None:
        with pytest.raises(ConnectionResetError, match="client went away"):
            await uploads.import_csv(user_id=user, source=broken())
        [upload] = await uploads.list_for_user(user)
        return upload

    upload = run_async(db_url, work)
    assert upload.error_message == "import aborted: client went away"
    assert count_rows(conn, upload.id) == 0


def test_a_malformed_async_stream_names_its_line(db_url: str, user: uuid.UUID) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"a,b\n1,2\n"
        yield b'3,"x\ny"\n4\n'

    async def work(uploads: AsyncCsvUploads) -> CsvFormatError:
        with pytest.raises(CsvFormatError) as info:
            await uploads.import_csv(user_id=user, source=body())
        return info.value

    error = run_async(db_url, work)
    assert str(error) == "line 5: 1 field where the header has 2"


def test_an_async_import_holds_a_bounded_amount_of_memory(db_url: str, user: uuid.UUID) -> None:
    size = 24 * 1024 * 1024
    line = b'12345,"some text, quoted",more text here,\xc3\xa9\xc3\xa9\n'

    async def body() -> AsyncIterator[bytes]:
        yield b"id,text,more,accents\n"
        block = line * (64 * 1024 // len(line))
        for _ in range(size // len(block)):
            yield block

    tracemalloc.start()
    try:
        upload = run_async(db_url, lambda uploads: uploads.import_csv(user_id=user, source=body()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert upload.file_size > size - 64 * 1024
    assert peak < 12 * 1024 * 1024, peak  # the file is twice that, and never all held


def test_the_event_loop_keeps_running_during_an_import(db_url: str, user: uuid.UUID) -> None:
    path_rows = b"n,text\n" + b"".join(b'%d,"a, b"\n' % i for i in range(300_000))

    async def work(uploads: AsyncCsvUploads) -> int:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await uploads.import_csv(user_id=user, source=io.BytesIO(path_rows))
        done = True
        await task
        return ticks

    assert run_async(db_url, work) > 10


def test_an_async_export_whose_sink_fails_ends_its_copy(
    db_url: str, user: uuid.UUID, plain: CsvUploads
) -> None:
    source = io.BytesIO(b"n\n" + b"".join(b"%d\n" % i for i in range(300_000)))
    upload = plain.import_csv(user_id=user, source=source)

    class Broken:
        async def write(self, data: bytes) -> None:
            if not data.startswith(b"n\n"):
                raise BrokenPipeError("reader went away")

    async def work(uploads: AsyncCsvUploads) -> list[bytes]:
        with pytest.raises(BrokenPipeError):
            await uploads.export_csv(upload.id, Broken())
        chunks = await uploads.export_csv_chunks(upload.id)
        first = [await anext(chunks), await anext(chunks)]
        await chunks.aclose()
        assert await uploads.get(upload.id) == upload  # the connection is usable
        return first

    first = run_async(db_url, work)
    assert first[0] == b"n\n"
    assert first[1].startswith(b"0\n1\n")


# -- CLI ----------------------------------------------------------------------------------


@pytest.fixture
def cli_env(db_url: str) -> dict[str, str]:
    return {"DATABASE_URL": db_url}


def test_cli_import_list_show_export(
    cli_env: dict[str, str], user: uuid.UUID, tmp_path: Path, plain: CsvUploads
) -> None:
    source = tmp_path / "people.csv"
    source.write_bytes(b'name,city\nAda,"London, UK"\nAlan,"Wilmslow\nCheshire"\n')
    imported = run_cli("csv", "import", str(source), "--user", "owner@example.com", env=cli_env)
    assert imported.returncode == 0, imported.stderr
    assert "2 rows x 2 columns" in imported.stdout
    [upload] = plain.list_for_user(user)

    listed = run_cli("csv", "list", "--user", "OWNER@example.com", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    assert "people.csv" in listed.stdout
    assert "completed" in listed.stdout

    shown = run_cli("csv", "show", str(upload.id), env=cli_env)
    assert shown.returncode == 0, shown.stderr
    assert "status:   completed" in shown.stdout
    assert '{"name": "Alan", "city": "Wilmslow\\nCheshire"}' in shown.stdout

    target = tmp_path / "out.csv"
    exported = run_cli("csv", "export", str(upload.id), "-o", str(target), env=cli_env)
    assert exported.returncode == 0, exported.stderr
    assert target.read_bytes() == b'name,city\nAda,"London, UK"\nAlan,"Wilmslow\nCheshire"\n'
    to_stdout = run_cli("csv", "export", str(upload.id), "-o", "-", env=cli_env)
    assert to_stdout.stdout == target.read_text()


def test_cli_import_error_is_one_line_with_the_line_number(
    cli_env: dict[str, str], user: uuid.UUID, tmp_path: Path
) -> None:
    source = tmp_path / "broken.csv"
    source.write_bytes(b"a,b\n1,2\n3\n")
    result = run_cli("csv", "import", str(source), "--user", "owner@example.com", env=cli_env)
    assert result.returncode == 1
    [message] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "line 3: 1 field where the header has 2" in message
    assert "Traceback" not in result.stderr


def test_cli_errors(cli_env: dict[str, str], tmp_path: Path, user: uuid.UUID) -> None:
    source = tmp_path / "ok.csv"
    source.write_bytes(b"a\n1\n")
    nobody = run_cli("csv", "import", str(source), "--user", "nobody@example.com", env=cli_env)
    assert nobody.returncode == 1
    assert "no user with email nobody@example.com" in nobody.stderr
    missing = run_cli("csv", "show", "999999", env=cli_env)
    assert (missing.returncode, "no CSV upload 999999" in missing.stderr) == (1, True)
    export = run_cli("csv", "export", "999999", "-o", str(tmp_path / "x.csv"), env=cli_env)
    assert export.returncode == 1
    assert list(tmp_path.iterdir()) == [source]


def test_cli_cleanup(
    cli_env: dict[str, str], conn: psycopg.Connection[Any], user: uuid.UUID
) -> None:
    fresh = checks.insert_processing_upload.one(conn, user_id=user)
    assert fresh is not None
    kept = run_cli("csv", "cleanup", env=cli_env)
    assert kept.returncode == 0, kept.stderr
    assert "0 abandoned upload(s)" in kept.stdout
    stale = checks.insert_stale_upload.one(conn, user_id=user)
    assert stale is not None
    result = run_cli("csv", "cleanup", "--older-than", "1800", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert f"failed abandoned upload {stale['id']}" in result.stdout
    assert f"upload {fresh['id']}" not in result.stdout


def test_cli_rejects_bad_numbers_without_a_traceback(cli_env: dict[str, str]) -> None:
    for args in (
        ("cleanup", "--older-than", "nan"),
        ("cleanup", "--older-than", "1e300"),
        ("cleanup", "--older-than", "-5"),
        ("cleanup", "--older-than", "0"),
        ("cleanup", "--older-than", "inf"),
        ("show", "1", "--rows", "-1"),
        ("export", "1", "-o", "-", "--delimiter", "|"),
    ):
        result = run_cli("csv", *args, env=cli_env)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert "Invalid value" in result.stderr, args
    for command in ("show", "export", "delete"):  # not a number: an adopted upload's app id
        result = run_cli(
            "csv", command, "abc", *(["-o", "-"] if command == "export" else []), env=cli_env
        )
        assert (result.returncode, result.stderr) == (1, "error: no CSV upload abc\n")


def test_cli_import_encoding_errors_are_one_line(
    cli_env: dict[str, str], user: uuid.UUID, tmp_path: Path
) -> None:
    source = tmp_path / "plain.csv"
    source.write_bytes(b"a,b\n1,2\n")
    for encoding, expected in (
        ("utf-16", "line 1: cannot decode the file as utf-16"),
        ("nope", "unknown encoding 'nope'"),
    ):
        result = run_cli(
            "csv", "import", str(source), "--user", "owner@example.com",
            "--encoding", encoding, env=cli_env,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        [message] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert expected in message


def test_cli_export_to_an_unwritable_place_is_one_line(
    cli_env: dict[str, str], plain: CsvUploads, user: uuid.UUID, tmp_path: Path
) -> None:
    upload = plain.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n"))
    for target in (tmp_path / "absent" / "x.csv", tmp_path):
        result = run_cli("csv", "export", str(upload.id), "-o", str(target), env=cli_env)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines() == [
            f"error: cannot write {target}: {result.stderr.split(': ')[-1].strip()}"
        ]
    assert list(tmp_path.iterdir()) == []


def test_cli_help_lists_the_commands() -> None:
    result = run_cli("csv", "--help")
    for command in ("import", "list", "show", "export", "delete", "cleanup"):
        assert command in result.stdout


def test_a_connection_in_another_client_encoding(side: Side, db_url: str, user: uuid.UUID) -> None:
    with side.connect(CsvUploads) as uploads:
        # Query.exec runs on the Blocking wrapper of the async connection too.
        checks.latin1_client_encoding.exec(uploads.conn)
        assert uploads.conn.info.encoding != "utf-8"
        upload = uploads.import_csv(user_id=user, source=io.BytesIO("a\nzł ✓\n".encode()))
        assert uploads.conn.info.encoding != "utf-8"  # SET LOCAL: back to LATIN1 afterwards
        assert b"".join(uploads.export_csv_chunks(upload.id)).decode() == "a\nzł ✓\n"
    with connect(db_url, autocommit=True) as utf8:
        assert [r.data for r in CsvUploads(utf8).rows(upload.id)] == [{"a": "zł ✓"}]


def cli_import(path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli("csv", "import", str(path), "--user", "owner@example.com", *args, env=env)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    [message] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.stderr
    return message


def test_cli_dialects_are_detected_given_and_exported(
    cli_env: dict[str, str], user: uuid.UUID, tmp_path: Path, plain: CsvUploads
) -> None:
    source = tmp_path / "europe.csv"
    source.write_bytes(codecs.BOM_UTF16_LE + 'name;price\nZoë;"1,50"\n'.encode("utf-16-le"))
    result = cli_import(source, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "europe.csv" in result.stderr
    assert "found a UTF-16 LE byte-order mark: reading as UTF-16 LE" in result.stderr
    assert "detected the delimiter ';' from the header line" in result.stderr
    [upload] = plain.list_for_user(user)
    assert plain.rows(upload.id)[0].data == {"name": "Zoë", "price": "1,50"}
    for typed, expected in ((",", 'name,price\nZoë,"1,50"\n'), ("tab", "name\tprice\nZoë\t1,50\n")):
        out = run_cli("csv", "export", str(upload.id), "-o", "-", "--delimiter", typed, env=cli_env)
        assert (out.returncode, out.stdout) == (0, expected), out.stderr

    tabbed = tmp_path / "tabbed.tsv"
    tabbed.write_bytes(b"a;b\tc\n1;2\t3\n")
    given = cli_import(tabbed, "--delimiter", "tab", env=cli_env)
    assert given.returncode == 0, given.stderr
    assert "detected" not in given.stderr
    assert "1 rows x 2 columns" in given.stdout
    bad = cli_import(tabbed, "--delimiter", "|", env=cli_env)
    assert bad.returncode == 2
    assert "unknown delimiter '|'" in bad.stderr


def test_cli_binary_and_non_utf8_files_are_one_short_line(
    cli_env: dict[str, str], user: uuid.UUID, tmp_path: Path
) -> None:
    workbook = tmp_path / "report.xlsx"
    workbook.write_bytes(b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml" + bytes(2000))
    result = cli_import(workbook, env=cli_env)
    assert result.returncode == 1
    assert error_line(result).startswith(
        f"error: {workbook}: not a text CSV: the file is an Excel workbook (.xlsx); "
        "save it as CSV first (upload "
    )
    noise = tmp_path / "noise.csv"
    noise.write_bytes(os.urandom(100_000))
    result = cli_import(noise, env=cli_env)
    assert result.returncode == 1
    assert "not a text CSV: NUL byte (0x00) at byte" in error_line(result)
    assert len(result.stderr) < 300
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name\nJosé\n".encode("cp1252"))
    result = cli_import(latin, env=cli_env)
    assert "line 2: byte 0xe9 is not valid utf-8 (pass --encoding, e.g. --encoding cp1252)" in (
        error_line(result)
    )
    assert cli_import(latin, "--encoding", "cp1252", env=cli_env).returncode == 0


def test_cli_delete_asks_first(cli_env: dict[str, str], user: uuid.UUID, plain: CsvUploads) -> None:
    upload = plain.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n2\n3\n"), filename="p.csv")
    what = f"upload {upload.id} (p.csv, completed) and its 3 rows"
    for answer in ("n\n", "", "maybe\n\n"):
        kept = run_cli_input("csv", "delete", str(upload.id), stdin=answer, env=cli_env)
        assert kept.returncode == 1, kept.stderr
        assert f"delete {what}? [y/N]" in kept.stderr
        assert "error: not deleted (pass --yes to delete without asking)" in kept.stderr
        assert plain.get(upload.id) == upload
    deleted = run_cli_input("csv", "delete", str(upload.id), stdin="y\n", env=cli_env)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == f"deleted {what}\n"
    assert plain.get(upload.id) is None
    other = plain.import_csv(user_id=user, source=io.BytesIO(b"a\n1\n"), filename="q.csv")
    scripted = run_cli("csv", "delete", str(other.id), "--yes", env=cli_env)
    assert scripted.stdout == f"deleted upload {other.id} (q.csv, completed) and its 1 row\n"
    missing = run_cli("csv", "delete", str(other.id), "--yes", env=cli_env)
    assert (missing.returncode, error_line(missing)) == (1, f"error: no CSV upload {other.id}")


def run_cli_input(*args: str, stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trampolin", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_cli_a_killed_import_is_failed_by_list_and_show(
    cli_env: dict[str, str], conn: psycopg.Connection[Any], user: uuid.UUID, tmp_path: Path
) -> None:
    fifo = tmp_path / "slow.csv"
    os.mkfifo(fifo)
    importer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trampolin",
            "csv",
            "import",
            str(fifo),
            "--user",
            "owner@example.com",
        ],
        env={**os.environ, **cli_env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with fifo.open("wb") as writer:  # opens once the importer opens its end
            writer.write(b"id,text\n" + b"".join(b"%d,some text\n" % i for i in range(200_000)))
            writer.flush()
            upload_id = wait_for_loading_upload(conn, user)
            wait_until_older_than(conn, upload_id, IMPORT_START_WINDOW)
            importer.send_signal(signal.SIGKILL)  # the CLI process alone, mid-import
            importer.wait()
    finally:
        if importer.poll() is None:
            importer.kill()
            importer.wait()
    wait_until_unlocked(conn, upload_id)

    listed = run_cli("csv", "list", "--user", "owner@example.com", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    assert f"upload {upload_id}: its import died; marked failed" in listed.stderr
    assert " failed " in listed.stdout
    shown = run_cli("csv", "show", str(upload_id), env=cli_env)
    assert "status:   failed" in shown.stdout
    assert "error:    import abandoned: the importing process died before it finished" in (
        shown.stdout
    )
    assert count_rows(conn, upload_id) == 0


def wait_for_loading_upload(conn: psycopg.Connection[Any], user: uuid.UUID) -> int:
    """The id of the user's upload once its importer holds the lock (rows are loading)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for row in checks.processing_uploads.many(conn, user_id=user):
            with conn.transaction():
                free = checks.upload_lock_free.one(conn, upload_id=row["id"])
                assert free is not None
                if not free["free"]:
                    return int(row["id"])
        time.sleep(0.05)
    raise AssertionError("the import never started loading")
