"""The CSV format rules, without a database: dialect, header, COPY text, errors, export.

``CopyLines(encoding=..., delimiter=...).chunks(feed, upload_id)`` reads a CSV byte
stream (a ``Feed``: csv_feed.ByteFeed, which also picks the encoding) and yields it
as COPY text for ``csv_rows`` in chunks of about 256 KiB, holding one record and one
chunk whatever the file's size. What it refuses is a CsvFormatError naming the
physical line of the file (1-based; CR, LF and CRLF each end one). RFC 4180 as
Python's csv reads it (``strict=True``); docs/csv.md has the rules as a table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Protocol

from trampolin.csv_feed import READ_CHUNK, text_codec
from trampolin.errors import CsvFormatError, InvalidInput

MAX_FIELD_CHARS = 16 * 1024 * 1024
"""The longest field accepted (characters): a bound on memory for a runaway quote."""

COPY_CHUNK = 256 * 1024
"""Bytes of COPY text (or of exported CSV) handed on at a time."""

#: What a user may type for a delimiter, and the character it means.
DELIMITERS = {
    ",": ",",
    "comma": ",",
    ";": ";",
    "semicolon": ";",
    "tab": "\t",
    "\t": "\t",
    "\\t": "\t",
}

_SPOKEN = {",": "a comma", ";": "a semicolon", "\t": "a tab"}
_SEP = "\x00"  # PostgreSQL text cannot hold NUL, so it can never be a real value.


def parse_delimiter(value: str) -> str:
    """The delimiter for what a user typed: ``,``, ``;`` or ``tab`` (InvalidInput otherwise)."""
    found = DELIMITERS.get(value.lower() if isinstance(value, str) else value)
    if found is None:
        raise InvalidInput(f"unknown delimiter {value!r} (use ',', ';' or tab)")
    return found


def delimiter_name(char: str) -> str:
    """How a delimiter is written in messages and options: ``','``, ``';'`` or ``tab``."""
    return "tab" if char == "\t" else repr(char)


def detect_delimiter(line: str) -> str:
    """A header line's delimiter: the most frequent of , ; tab outside quotes (',' on a tie)."""
    counts = dict.fromkeys(",;\t", 0)
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda char: counts[char])  # the first of equals: ','
    return best if counts[best] else ","


class Feed(Protocol):
    """What the parse reads: a binary reader that counts its bytes (csv_feed.ByteFeed)."""

    bytes_read: int

    def decoding(self, encoding: str | None, /) -> tuple[str, tuple[str, ...]]: ...

    def readinto(self, buffer: Any, /) -> int | None: ...


@dataclass(frozen=True)
class CopyChunk:
    """COPY text lines (possibly none), the source's bytes read so far, and what was detected."""

    data: bytes
    bytes_read: int
    notices: tuple[str, ...] = ()


class CopyLines:
    """One file's parse: its options, then (after ``chunks``) its header and row count."""

    def __init__(self, *, encoding: str | None = None, delimiter: str | None = None) -> None:
        """InvalidInput for an unknown encoding or delimiter, before anything is read."""
        self.encoding = None if encoding is None else text_codec(encoding).name
        self.delimiter = None if delimiter is None else parse_delimiter(delimiter)
        self.headers: list[str] = []
        self.rows = 0
        self._feed: Feed | None = None

    @property
    def bytes_read(self) -> int:
        return 0 if self._feed is None else self._feed.bytes_read

    def chunks(self, feed: Feed, upload_id: int) -> Generator[CopyChunk, None, None]:
        """The file as COPY text for csv_rows (upload_id, row_index, values), chunk by chunk.

        The last chunk carries the final byte count; the first carries the notices
        (a byte-order mark found, a delimiter detected).
        """
        self._feed = feed
        codec, notices = feed.decoding(self.encoding)
        text = io.TextIOWrapper(  # type: ignore[type-var]
            feed,
            encoding=codec,
            errors="surrogateescape",  # undecodable bytes are found, with their line, below
            newline="",
        )
        text._CHUNK_SIZE = READ_CHUNK  # type: ignore[attr-defined]
        if csv.field_size_limit() < MAX_FIELD_CHARS:
            csv.field_size_limit(MAX_FIELD_CHARS)
        try:
            yield from self._records(text, codec, notices, f"{upload_id}\t")
        finally:
            text.detach()

    def _dialect(self, text: Iterator[str]) -> tuple[Iterable[str], str, tuple[str, ...]]:
        """The lines to parse, the delimiter, and a notice if it was detected (not ',')."""
        if self.delimiter is not None:
            return text, self.delimiter, ()
        skipped: list[str] = []
        for line in text:
            if line.strip("\r\n"):
                found = detect_delimiter(line)
                notice = () if found == "," else (
                    f"detected the delimiter {delimiter_name(found)} from the header line "
                    "(give the delimiter if that is wrong)",
                )  # fmt: skip
                return chain(skipped, (line,), text), found, notice
            skipped.append(line)
        return skipped, ",", ()

    def _records(
        self, text: Iterator[str], codec: str, notices: tuple[str, ...], prefix: str
    ) -> Iterator[CopyChunk]:
        """Reads the header, then hands the rest to _encoded."""
        errors = _Errors(None, codec, ",")
        try:
            lines, sep, detected = self._dialect(text)
            reader = csv.reader(lines, strict=True, delimiter=sep)
            errors = _Errors(reader, codec, sep)
            first: list[str] = next(reader, [])
            self.headers = errors.header(first or _first_record(reader))
            yield from self._encoded(reader, errors, notices + detected, prefix)
        except csv.Error as exc:  # in the header: the records' own are caught in _encoded
            raise errors.from_csv(exc, after=0) from None
        except UnicodeError as exc:  # UnicodeDecodeError, or e.g. utf-16 without a BOM
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise CsvFormatError(
                f"cannot decode the file as {_shown(codec)} ({reason})", line=errors.line() + 1
            ) from None

    def _encoded(
        self, reader: Any, errors: _Errors, notices: tuple[str, ...], prefix: str
    ) -> Iterator[CopyChunk]:
        """One COPY line per record: the values NUL-joined and escaped (docs/csv.md, Design).

        The hot loop of an import, kept in one piece: a call per record would cost more.
        """
        assert self._feed is not None
        feed, headers = self._feed, self.headers
        width, seps, between = len(headers), len(headers) - 1, '","'
        n, buffered, size, end = 0, [], 0, reader.line_num
        try:
            for row in reader:
                if len(row) != width:
                    if not row:  # a blank line
                        end = reader.line_num
                        continue
                    raise errors.ragged(row, width)
                s = _SEP.join(row)
                if s.count(_SEP) != seps:
                    raise errors.nul(row, headers)
                # COPY text format around an array literal of quoted elements.
                if "\\" in s:
                    s = s.replace("\\", "\\\\\\\\")
                if '"' in s:
                    s = s.replace('"', '\\\\"')
                if "\n" in s:
                    s = s.replace("\n", "\\n")
                if "\r" in s:
                    s = s.replace("\r", "\\r")
                if "\t" in s:
                    s = s.replace("\t", "\\t")
                n += 1
                try:
                    data = f'{prefix}{n}\t{{"{s.replace(_SEP, between)}"}}\n'.encode()
                except UnicodeEncodeError:
                    raise errors.undecodable(row) from None
                buffered.append(data)
                size += len(data)
                if size >= COPY_CHUNK:
                    self.rows = n
                    yield CopyChunk(b"".join(buffered), feed.bytes_read, notices)
                    notices, size = (), 0
                    buffered.clear()
                end = reader.line_num
        except csv.Error as exc:
            raise errors.from_csv(exc, after=end) from None
        self.rows = n
        yield CopyChunk(b"".join(buffered), feed.bytes_read, notices)


class CsvText:
    """CSV written row by row into a buffer (UTF-8, LF line ends), taken out as bytes."""

    def __init__(self, delimiter: str = ",") -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, delimiter=delimiter, lineterminator="\n")

    def row(self, values: Sequence[str]) -> None:
        self._writer.writerow(values)

    @property
    def size(self) -> int:
        """Characters written and not yet taken."""
        return self._buffer.tell()

    def take(self) -> bytes:
        """What was written since the last take, encoded."""
        data = self._buffer.getvalue().encode()
        self._buffer.seek(0)
        self._buffer.truncate()
        return data


def header_line(headers: Sequence[str], delimiter: str = ",") -> bytes:
    """The export's first line: the header as CSV."""
    text = CsvText(delimiter)
    text.row(headers)
    return text.take()


def _first_record(reader: Iterator[list[str]]) -> list[str]:
    """The first non-blank record (the header), skipping leading blank lines."""
    for row in reader:
        if row:
            return list(row)
    raise CsvFormatError("the file is empty: a header row is required", line=1)


def _breaks(text: str) -> int:
    """Physical line breaks in text (CRLF, LF and CR each count once)."""
    return text.count("\r") + text.count("\n") - text.count("\r\n")


def _shown(codec: str) -> str:
    """A codec's name as the user would give it (utf-8-sig is utf-8 with its mark dropped)."""
    return "utf-8" if codec == "utf-8-sig" else codec


def _name(value: str) -> str:
    """A column name for a message: quoted, and cut short when long (binary junk can be)."""
    return repr(value) if len(value) <= 40 else repr(value[:40]) + "..."


class _Errors:
    """Builds CsvFormatErrors that name the physical line where the trouble is."""

    def __init__(self, reader: Any, codec: str, delimiter: str) -> None:
        self.reader = reader
        self.encoding = _shown(codec)
        self.delimiter = delimiter

    def line(self) -> int:
        """Lines read so far (0 before the parse has begun)."""
        return 0 if self.reader is None else int(self.reader.line_num)

    def _start(self, row: list[str]) -> int:
        """First line of the record just read (it may span several lines)."""
        return self.line() - _breaks(",".join(row))

    def _line_at(self, row: list[str], column: int, offset: int) -> int:
        before = ",".join(row[:column]) + "," + row[column][:offset]
        return self._start(row) + _breaks(before)

    def header(self, row: list[str]) -> list[str]:
        seen: dict[str, int] = {}
        for i, name in enumerate(row):
            if _SEP in name:
                raise self.nul(row, row)
            try:
                name.encode()
            except UnicodeEncodeError:
                raise self.undecodable(row) from None
            if name == "":
                raise CsvFormatError(
                    f"column {i + 1} of the header has no name (every column needs one)",
                    line=self._start(row),
                )
            if name in seen:
                raise CsvFormatError(
                    f"duplicate column name {_name(name)} in the header "
                    f"(columns {seen[name] + 1} and {i + 1})",
                    line=self._start(row),
                )
            seen[name] = i
        return list(row)

    def ragged(self, row: list[str], width: int) -> CsvFormatError:
        return CsvFormatError(
            f"{len(row)} field{'s' if len(row) != 1 else ''} where the header has {width}",
            line=self._start(row),
        )

    def nul(self, row: list[str], headers: list[str]) -> CsvFormatError:
        for i, value in enumerate(row):
            offset = value.find(_SEP)
            if offset >= 0:
                return CsvFormatError(
                    f"NUL byte (0x00) in column {_name(headers[i])}: "
                    "PostgreSQL text cannot hold it",
                    line=self._line_at(row, i, offset),
                )
        return CsvFormatError("NUL byte (0x00)", line=self._start(row))  # pragma: no cover

    def undecodable(self, row: list[str]) -> CsvFormatError:
        hint = " (pass --encoding, e.g. --encoding cp1252)" if self.encoding == "utf-8" else ""
        for i, value in enumerate(row):
            for offset, char in enumerate(value):
                if "\udc80" <= char <= "\udcff":
                    return CsvFormatError(
                        f"byte 0x{ord(char) - 0xDC00:02x} is not valid {self.encoding}{hint}",
                        line=self._line_at(row, i, offset),
                    )
        return CsvFormatError(f"text that is not valid {self.encoding}", line=self._start(row))

    def from_csv(self, exc: csv.Error, *, after: int) -> CsvFormatError:
        """The error for csv's exception; ``after``: the line where the last record ended."""
        message = str(exc)
        line = self.line()
        start = after + 1
        if "unexpected end of data" in message:
            return CsvFormatError(
                "the file ends inside a quoted field: unterminated quote "
                f"(in the record that starts on line {start})",
                line=line,
            )
        if "expected after" in message:
            return CsvFormatError(
                f"a closing quote is followed by a character other than {_SPOKEN[self.delimiter]} "
                'or a line end (a quote inside a quoted field must be doubled: "")',
                line=line,
            )
        if "field larger than field limit" in message:
            return CsvFormatError(
                f"a field is longer than {MAX_FIELD_CHARS // (1024 * 1024)} MiB characters "
                f"(record starting on line {start}; an unterminated quote?)",
                line=line,
            )
        return CsvFormatError(message, line=line)
