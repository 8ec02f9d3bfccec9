"""The CSV format rules of trampolin.csv_format and the byte checks of csv_feed (no database).

Each file is parsed into COPY text, which ``copy_values`` reads back the way
PostgreSQL would (COPY text escapes, then the array literal), so these tests
check what reaches csv_rows without a server.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trampolin.csv_feed import ByteFeed, binary_content, text_codec
from trampolin.csv_format import (
    COPY_CHUNK,
    MAX_FIELD_CHARS,
    CopyLines,
    CsvText,
    delimiter_name,
    detect_delimiter,
    header_line,
    parse_delimiter,
)
from trampolin.errors import CsvFormatError, InvalidInput

DATA = Path(__file__).resolve().parent.parent / "data" / "csv"
SPECTRUM = DATA / "csv-spectrum"


class Parsed:
    """A file run through CopyLines: its header, rows (read back from COPY text), notices."""

    def __init__(self, data: bytes, *, read_size: int = 7, **options: str | None) -> None:
        source = io.BytesIO(data)
        self.lines = CopyLines(**options)
        self.feed = ByteFeed(lambda: source.read(read_size))
        self.chunks = list(self.lines.chunks(self.feed, upload_id=42))
        self.copy_text = b"".join(chunk.data for chunk in self.chunks)
        self.notices = [n for chunk in self.chunks for n in chunk.notices]
        self.headers = self.lines.headers
        self.rows = copy_values(self.copy_text)

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.headers, row, strict=True)) for row in self.rows]


def parse(data: bytes, *, encoding: str | None = None, delimiter: str | None = None) -> Parsed:
    return Parsed(data, encoding=encoding, delimiter=delimiter)


def fails(data: bytes, *, read_size: int = 7, **options: str | None) -> CsvFormatError:
    with pytest.raises(CsvFormatError) as info:
        Parsed(data, read_size=read_size, **options)
    return info.value


def copy_values(text: bytes) -> list[list[str]]:
    """The arrays of COPY text lines ``42 <TAB> n <TAB> {"a","b"}``, as PostgreSQL reads them."""
    rows = []
    for number, line in enumerate(text.decode().split("\n")[:-1], start=1):
        upload_id, row_index, literal = line.split("\t")
        assert (upload_id, row_index) == ("42", str(number))
        rows.append(_array(_unescape_copy(literal)))
    return rows


def _unescape_copy(field: str) -> str:
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\":
            out.append({"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[field[i + 1]])
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _array(literal: str) -> list[str]:
    """A one-dimensional array literal whose elements are all quoted: {"a","b\\"c"}."""
    assert literal.startswith('{"'), literal
    assert literal.endswith('"}'), literal
    values, current, i = [], [], 2
    while True:
        char = literal[i]
        if char == "\\":
            current.append(literal[i + 1])
            i += 2
        elif char == '"':
            values.append("".join(current))
            if literal[i + 1] == "}":
                return values
            assert literal[i + 1 : i + 3] == ',"'
            current, i = [], i + 3
        else:
            current.append(char)
            i += 1


# -- the corpus, without a database -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.stem for p in (SPECTRUM / "json").glob("*.json")))
def test_csv_spectrum(name: str) -> None:
    expected = json.loads((SPECTRUM / "json" / f"{name}.json").read_text(encoding="utf-8"))
    if name == "null":  # Python's csv reads quoted and unquoted NULL alike: the text NULL
        expected[2]["b"] = "NULL"
    parsed = parse((SPECTRUM / "csvs" / f"{name}.csv").read_bytes())
    assert parsed.headers == list(expected[0])
    assert parsed.records() == expected


# -- COPY text ----------------------------------------------------------------------------


def test_copy_text_escapes_what_copy_and_arrays_would_read_otherwise() -> None:
    parsed = parse(b'a,b,c\r\n"x\\y","say ""hi""","t\tab\r\nlf\n"\r\n')
    assert parsed.copy_text == b'42\t1\t{"x\\\\\\\\y","say \\\\"hi\\\\"","t\\tab\\r\\nlf\\n"}\n'
    assert parsed.rows == [["x\\y", 'say "hi"', "t\tab\r\nlf\n"]]


@given(
    st.lists(
        st.lists(
            st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
            min_size=3,
            max_size=3,
        ),
        max_size=8,
    ),
    st.sampled_from([",", ";", "\t"]),
)
def test_any_text_reaches_copy_unchanged(rows: list[list[str]], sep: str) -> None:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=sep, lineterminator="\r\n").writerows([["a", "b", "c"], *rows])
    parsed = parse(out.getvalue().encode(), delimiter=sep)
    assert parsed.rows == rows


def test_chunks_are_about_copy_chunk_bytes_and_count_the_source() -> None:
    data = b"n,text\n" + b"".join(b"%d,some text here\n" % i for i in range(40_000))
    parsed = Parsed(data, read_size=65536)
    assert len(parsed.chunks) > 2
    assert all(len(c.data) >= COPY_CHUNK for c in parsed.chunks[:-1])
    assert [c.bytes_read for c in parsed.chunks] == sorted(c.bytes_read for c in parsed.chunks)
    assert parsed.chunks[-1].bytes_read == len(data) == parsed.lines.bytes_read
    assert parsed.lines.rows == 40_000 == len(parsed.rows)


# -- header, blank lines, line numbers ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"", 1, "a header row is required"),
        (b"\n\r\n\n", 1, "a header row is required"),
        (b"id,name,id\n1,2,3\n", 1, "duplicate column name 'id' in the header (columns 1 and 3)"),
        (b"a,,c\n1,2,3\n", 1, "column 2 of the header has no name"),
        (b"a,b\n1,2\r3,4\n5,6\r\n7\n", 5, "1 field where the header has 2"),
        (b"a,b\n1,2\n \n", 3, "1 field where the header has 2"),
        (b'a,b\n1,2\n3,"never closed\n4,5\n', 4, "unterminated quote (in the record that starts"),
        (b'a,b\n1,2\n"3"x,4\n', 3, "other than a comma or a line end"),
        (b'a,b\n1,"x\ny\x00z"\n', 3, "NUL byte (0x00) in column 'b'"),
        (b'a,b\n3,"multi\nline caf\xe9"\n', 3, "byte 0xe9 is not valid utf-8"),
    ],
)
def test_errors_name_the_physical_line(data: bytes, line: int, words: str) -> None:
    error = fails(data)
    assert error.line == line
    assert words in str(error)
    assert str(error).startswith(f"line {line}: ")


def test_blank_lines_are_skipped_and_empty_fields_are_values() -> None:
    parsed = parse(b"\n\r\na,b,c\n\n1,,3\n,,\n\n")
    assert parsed.rows == [["1", "", "3"], ["", "", ""]]


def test_a_field_over_the_limit() -> None:
    error = fails(b'a\n"' + b"x" * (MAX_FIELD_CHARS + 1) + b'"\n', read_size=1 << 20)
    assert (error.line, "longer than 16 MiB" in str(error)) == (2, True)


def test_long_names_are_cut_short_in_messages() -> None:
    name = "n" * 5000
    error = fails(f"{name},{name}\n".encode())
    assert len(str(error)) < 200
    assert "duplicate column name 'nnnn" in str(error)


# -- dialects -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "char"),
    [(",", ","), (";", ";"), ("tab", "\t"), ("TAB", "\t"), ("\t", "\t"), ("\\t", "\t")],
)
def test_delimiters_a_user_may_type(typed: str, char: str) -> None:
    assert parse_delimiter(typed) == char


@pytest.mark.parametrize("typed", ["|", "", ",,", "space", " "])
def test_other_delimiters_are_refused(typed: str) -> None:
    with pytest.raises(InvalidInput, match="unknown delimiter"):
        parse_delimiter(typed)
    with pytest.raises(InvalidInput, match="unknown delimiter"):
        CopyLines(delimiter=typed)


def test_delimiter_names() -> None:
    assert [delimiter_name(c) for c in ",;\t"] == ["','", "';'", "tab"]


@pytest.mark.parametrize(
    ("header", "found"),
    [
        ("a,b,c\r\n", ","),
        ("a;b;c\n", ";"),
        ("a\tb\tc\n", "\t"),
        ("only\n", ","),
        ('"x;y";"z,w",v\n', ","),  # outside quotes only: one ',' beats no ';'
        ('"a,b";"c,d";e\n', ";"),
        ("a;b,c\n", ","),  # a tie goes to ','
        ("a;b;c,d\n", ";"),
        ('"never closed;x\n', ","),
    ],
)
def test_detect_delimiter(header: str, found: str) -> None:
    assert detect_delimiter(header) == found


def test_semicolon_files_are_detected_and_said() -> None:
    parsed = parse(b'\r\nname;city\r\nAda;"London; UK"\r\n"x""y";\r\n')
    assert parsed.records() == [{"name": "Ada", "city": "London; UK"}, {"name": 'x"y', "city": ""}]
    assert parsed.notices == [
        "detected the delimiter ';' from the header line (give the delimiter if that is wrong)"
    ]


def test_tab_files_are_detected() -> None:
    parsed = parse(b'a\tb\n1\t"x\ty"\n')
    assert parsed.rows == [["1", "x\ty"]]
    assert parsed.notices == [
        "detected the delimiter tab from the header line (give the delimiter if that is wrong)"
    ]


def test_a_given_delimiter_wins_and_comma_says_nothing() -> None:
    assert parse(b"a;b\n1;2\n", delimiter=",").rows == [["1;2"]]
    assert parse(b"a,b\n1,2\n").notices == []


def test_errors_in_a_semicolon_file() -> None:
    assert "3 fields where the header has 2" in str(fails(b"a;b\n1;2\n1;2;3\n"))
    error = fails(b'a;b\n"x"y;2\n')
    assert "other than a semicolon or a line end" in str(error)
    assert error.line == 2


# -- encodings and byte-order marks -------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "label"),
    [
        ("utf-8-sig", "UTF-8"),
        ("utf-16-le", "UTF-16 LE"),
        ("utf-16-be", "UTF-16 BE"),
        ("utf-32-le", "UTF-32 LE"),
        ("utf-32-be", "UTF-32 BE"),
    ],
)
def test_a_byte_order_mark_chooses_the_encoding(codec: str, label: str) -> None:
    text = "name,city\nZoë,Kraków\n\ufeffx,😀\n"
    mark = {
        "utf-8-sig": b"",
        "utf-16-le": codecs.BOM_UTF16_LE,
        "utf-16-be": codecs.BOM_UTF16_BE,
        "utf-32-le": codecs.BOM_UTF32_LE,
        "utf-32-be": codecs.BOM_UTF32_BE,
    }[codec]
    parsed = parse(mark + text.encode(codec))
    assert parsed.rows == [["Zoë", "Kraków"], ["\ufeffx", "😀"]]  # only the first mark goes
    assert parsed.notices == [f"found a {label} byte-order mark: reading as {label}"]


def test_a_matching_encoding_may_be_given_with_a_mark() -> None:
    assert parse("a\n1\n".encode("utf-16"), encoding="utf-16").rows == [["1"]]
    assert parse(b"\xef\xbb\xbfa\n1\n", encoding="UTF8").notices == []


def test_a_mark_that_contradicts_the_given_encoding() -> None:
    error = fails("a\n1\n".encode("utf-16"), encoding="cp1252")
    assert str(error) == (
        "line 1: the file starts with a UTF-16 LE byte-order mark, but the encoding given is "
        "cp1252 (leave the encoding out to follow the mark)"
    )


def test_utf16_given_without_a_mark() -> None:
    error = fails(b"a,b\n1,2\n", encoding="utf-16")
    assert error.line == 1
    assert "cannot decode the file as utf-16" in str(error)
    assert "BOM" in str(error)


def test_the_non_utf8_hint_names_the_option() -> None:
    assert str(fails(b"name\ncaf\xe9\n")) == (
        "line 2: byte 0xe9 is not valid utf-8 (pass --encoding, e.g. --encoding cp1252)"
    )
    assert str(fails(b"name\nok\n\x81\n", encoding="cp1252")) == (
        "line 3: byte 0x81 is not valid cp1252"
    )
    assert parse("prénom\nJosé\n".encode("latin-1"), encoding="latin-1").rows == [["José"]]


@pytest.mark.parametrize("name", ["no-such-codec", "utf\x008", ""])
def test_unknown_encodings(name: str) -> None:
    with pytest.raises(InvalidInput, match="unknown encoding"):
        text_codec(name)
    with pytest.raises(InvalidInput, match="not a text encoding"):
        CopyLines(encoding="base64")


# -- files that are not text --------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "seen"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "an Excel workbook (.xlsx)"),
        (b"PK\x03\x04\x14\x00\x00\x08mimetypeapplication/vnd.oasis.opendocument.spreadsheet",
         "an OpenDocument spreadsheet (.ods)"),
        (b"PK\x03\x04\x0a\x00\x00\x00data.csv", "a ZIP archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "an old Excel .xls workbook"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"\x1f\x8b\x08\x00\x00\x00", "gzip-compressed; decompress it first"),
        (b"\x7fELF\x02\x01\x01\x00\x00", "an executable program (ELF)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "a PNG image"),
        (b"SQLite format 3\x00\x10\x00", "an SQLite database"),
    ],
)  # fmt: skip
def test_known_binary_files_are_named(start: bytes, seen: str) -> None:
    error = fails(start + bytes(range(256)) * 4)
    assert str(error).startswith(f"not a text CSV: the file is {seen}")
    assert error.line is None


def test_a_nul_in_the_header_line_means_binary() -> None:
    assert str(fails(b"a,\x00b\n1,2\n")) == (
        "not a text CSV: NUL byte (0x00) at byte 3 of the file; save it as CSV first"
    )


def test_utf16_without_a_mark_gets_a_hint() -> None:
    assert "give the encoding utf-16-le" in str(
        fails("name,city\nAda,London\n".encode("utf-16-le"))
    )
    assert "give the encoding utf-16-be" in str(
        fails("name,city\nAda,London\n".encode("utf-16-be"))
    )
    assert parse("a\n1\n".encode("utf-16-le"), encoding="utf-16-le").rows == [["1"]]


def test_a_nul_further_down_a_text_file_is_named_by_line_and_column() -> None:
    error = fails(b'a,b\n1,2\n3,"x\ny\x00z"\n')
    assert (error.line, "NUL byte (0x00) in column 'b'" in str(error)) == (4, True)


def test_random_binary_gives_one_short_line() -> None:
    for seed in range(20):
        data = os.urandom(4096 + seed)
        error = fails(data)
        message = str(error)
        assert len(message) < 120, message
        assert "\n" not in message


def test_binary_content_passes_text() -> None:
    assert binary_content(b"a,b\n1,2\n", "utf-8") is None
    assert binary_content("a,b\n".encode("utf-16-le"), "utf-16-le") is None


# -- export -------------------------------------------------------------------------------


def test_export_text() -> None:
    assert header_line(["a b", 'say "x"', "c;d"], ";") == b'a b;"say ""x""";"c;d"\n'
    written = CsvText("\t")
    written.row(["1", "x\ty", ""])
    written.row(["only"])
    assert written.size > 0
    assert written.take() == b'1\t"x\ty"\t\nonly\n'
    assert (written.size, written.take()) == (0, b"")


# -- the byte feed ------------------------------------------------------------------------


def test_byte_feed_reads_across_chunks_and_counts() -> None:
    parts = iter([b"ab", b"", b"cdefg", b"h"])
    feed = ByteFeed(lambda: next(parts, b""))
    assert feed.read(3) == b"ab"  # a read stops at the end of a chunk
    assert feed.bytes_read == 2  # b"" ends the source
    assert feed.read() == b""


def test_byte_feed_decoding_looks_at_the_start_without_reading_it() -> None:
    source = io.BytesIO(codecs.BOM_UTF16_BE + "a\n".encode("utf-16-be"))
    feed = ByteFeed(lambda: source.read(1))
    assert feed.decoding(None) == (
        "utf-16",
        ("found a UTF-16 BE byte-order mark: reading as UTF-16 BE",),
    )
    assert feed.read() == codecs.BOM_UTF16_BE + "a\n".encode("utf-16-be")
    assert feed.bytes_read == 6
