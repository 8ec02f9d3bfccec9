"""CSV uploads: stream a file into csv_rows with COPY, all or nothing; read and export it back.

The file is parsed by Python's csv module (``strict=True``) while it streams
from the source, and every record becomes one COPY line
``upload_id <TAB> row_index <TAB> {"v1","v2",...}`` built with a handful of
C-level string operations (faster than psycopg's ``write_row``: see docs/csv.md).
Nothing is held but the current record and a 256 KiB write buffer.

Transactions. Nothing here ever ends a transaction the caller owns. Every
write runs in a ``conn.transaction()`` block; on a connection that is not in
autocommit mode and has no transaction open, a no-op query first opens
psycopg's implicit transaction, so that block is a savepoint and the commit or
rollback stays the caller's (as in trampolin.auth).

``import_csv`` works in up to three blocks: insert the upload as 'processing';
load every row holding the upload's advisory lock and mark it 'completed'; on
failure only, mark it 'failed' with the reason and raise CsvFormatError
(``.line``, ``.upload_id``) or the original error. On an AUTOCOMMIT connection
(where every statement commits anyway) the blocks are three short real
transactions, and that is deliberate: others see 'processing' while the rows
load, then 'completed' with every row, never a partial set; and 'failed' stays
recorded. Inside a transaction (the caller's, or the implicit one of a
non-autocommit connection) they are savepoints: nothing is visible to others
until the caller commits, a failed load is still rolled back to zero rows, and
the caller's commit or rollback decides whether the upload exists at all.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import DictRow

from trampolin import queries
from trampolin.db import atomic
from trampolin.errors import Conflict, CsvFormatError, InvalidInput, NotFound

MAX_FIELD_CHARS = 16 * 1024 * 1024
"""The longest field accepted (characters): a bound on memory for a runaway quote."""

SERVER_EXPORT_COLUMNS = 100
"""Up to this width the server writes the export's CSV; wider, the client does (see export_rows)."""

DEFAULT_ABANDONED_AFTER = 60.0
"""Seconds a 'processing' upload must be idle before cleanup may fail it."""

MAX_ABANDONED_AFTER = 30 * 24 * 3600.0
"""The largest ``older_than`` cleanup accepts (30 days)."""

_MAX_BIGINT = 2**63 - 1

_WRITE_BUFFER = 256 * 1024
_READ_CHUNK = 1024 * 1024
_SEP = "\x00"  # PostgreSQL text cannot hold NUL, so it can never be a real value.

Status = Literal["pending", "processing", "completed", "failed"]
Progress = Callable[[int], None]
Source = str | os.PathLike[str] | IO[bytes]


class _BinaryReader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class CsvUpload:
    id: int
    user_id: uuid.UUID
    filename: str
    status: Status
    headers: tuple[str, ...]
    total_rows: int
    file_size: int
    error_message: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CsvRow:
    upload_id: int
    row_index: int
    data: dict[str, str]


def _upload(row: DictRow) -> CsvUpload:
    return CsvUpload(
        id=row["id"],
        user_id=row["user_id"],
        filename=row["filename"],
        status=row["status"],
        headers=tuple(row["headers"]),
        total_rows=row["total_rows"],
        file_size=row["file_size"],
        error_message=row["error_message"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class CsvUploads:
    """CSV uploads and their rows on one connection.

    Never ends the caller's transaction: inside one (explicit, or the implicit
    transaction of a non-autocommit connection, which a no-op query opens when
    none is) every write is a savepoint and the caller's commit or rollback
    decides. On an AUTOCOMMIT connection each write method is one transaction
    that commits at once, as any statement would, except ``import_csv``, which
    by design commits up to three short ones ('processing'; the rows with
    'completed'; or 'failed') so that others can see the upload loading. See
    the module docstring.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.q = queries.load("csv_uploads")

    def import_csv(
        self,
        *,
        user_id: uuid.UUID | str,
        source: Source,
        filename: str | None = None,
        encoding: str = "utf-8",
        progress: Progress | None = None,
    ) -> CsvUpload:
        """Load a CSV file (path or binary file object) as a new completed upload.

        ``progress`` is called with the number of bytes read so far. Raises
        CsvFormatError naming the line when the file is malformed; the upload
        is then 'failed' and has no rows.
        """
        codec = _text_codec(encoding)
        with _open_source(source) as (raw, default_name):
            counter = _CountingReader(raw, progress)
            try:
                with self._atomic():
                    row = self.q.insert_upload.one(
                        self.conn, user_id=_user_uuid(user_id), filename=filename or default_name
                    )
            except psycopg.errors.ForeignKeyViolation:
                raise NotFound(f"no user {user_id}") from None
            assert row is not None
            upload_id: int = row["id"]
            try:
                with self._atomic():
                    self.q.lock_upload.exec(self.conn, upload_id=upload_id)
                    if self.conn.info.encoding != "utf-8":  # the COPY lines are UTF-8 bytes
                        self.q.utf8_client_encoding.exec(self.conn)
                    if self.q.claim_upload.one(self.conn, upload_id=upload_id) is None:
                        raise self._not_claimed(upload_id)
                    headers, total = self._load(upload_id, counter, codec)
                    done = self.q.complete_upload.one(
                        self.conn,
                        upload_id=upload_id,
                        headers=list(headers),
                        total_rows=total,
                        file_size=counter.bytes_read,
                    )
            except CsvFormatError as exc:
                exc.upload_id = upload_id
                self._fail(upload_id, str(exc), counter.bytes_read)
                raise
            except (Exception, KeyboardInterrupt) as exc:
                if not self.conn.closed and not self.conn.broken:
                    with suppress(psycopg.Error):
                        self._fail(
                            upload_id, f"import aborted: {_first_line(exc)}", counter.bytes_read
                        )
                raise
        assert done is not None
        return _upload(done)

    def _not_claimed(self, upload_id: int) -> Conflict:
        """Why the upload is no longer 'processing' when its rows are about to load."""
        row = self.q.get_upload.one(self.conn, upload_id=upload_id)
        if row is None:
            return Conflict(
                f"upload {upload_id} was deleted (or its user was) before its rows loaded"
            )
        if row["status"] == "failed":
            return Conflict(f"upload {upload_id} was failed by cleanup before its rows loaded")
        return Conflict(f"upload {upload_id} is {row['status']}, no longer processing")

    def _atomic(self) -> AbstractContextManager[object]:
        """A transaction block that never ends the caller's transaction (see db.atomic)."""
        return atomic(self.conn)

    def _fail(self, upload_id: int, message: str, file_size: int) -> None:
        with self._atomic():
            self.q.fail_upload.one(
                self.conn, upload_id=upload_id, error_message=message, file_size=file_size
            )

    def _load(
        self, upload_id: int, raw: _CountingReader, codec: codecs.CodecInfo
    ) -> tuple[list[str], int]:
        """COPY every record of the file into csv_rows; the header and the row count."""
        name = "utf-8-sig" if codec.name == "utf-8" else codec.name  # drops one leading BOM
        text = io.TextIOWrapper(  # type: ignore[type-var]
            raw,
            encoding=name,
            errors="surrogateescape",  # undecodable bytes are found, with their line, below
            newline="",
        )
        text._CHUNK_SIZE = _READ_CHUNK  # type: ignore[attr-defined]
        if csv.field_size_limit() < MAX_FIELD_CHARS:
            csv.field_size_limit(MAX_FIELD_CHARS)
        reader = csv.reader(text, strict=True)
        errors = _Errors(reader, codec.name)
        try:
            end = 0
            first: list[str] = next(reader, [])
            headers = errors.header(first or _first_record(reader))
            width = len(headers)
            seps = width - 1
            prefix = f"{upload_id}\t"
            between = '","'
            end = reader.line_num
            n = 0
            buffered: list[bytes] = []
            size = 0
            with self.q.copy_rows.copy(self.conn) as copy:
                write = copy.write
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
                    if size >= _WRITE_BUFFER:
                        write(b"".join(buffered))
                        buffered.clear()
                        size = 0
                    end = reader.line_num
                if buffered:
                    write(b"".join(buffered))
        except csv.Error as exc:
            raise errors.from_csv(exc, after=end) from None
        except UnicodeError as exc:  # UnicodeDecodeError, or e.g. utf-16 without a BOM
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else _first_line(exc)
            raise CsvFormatError(
                f"cannot decode the file as {codec.name} ({reason})",
                line=reader.line_num + 1,
            ) from None
        finally:
            text.detach()
        return headers, n

    def get(
        self, upload_id: int | str, *, user_id: uuid.UUID | str | None = None
    ) -> CsvUpload | None:
        """The upload; None if unknown, or if ``user_id`` is given and does not own it.

        An id that cannot be an upload's (``"abc"``, ``-1``, beyond bigint) is
        unknown too; a decimal string is read as the number. A user id that is
        not a UUID is InvalidInput.
        """
        key = _lookup_id(upload_id)
        owner = None if user_id is None else _user_uuid(user_id)
        if key is None:
            return None
        if owner is None:
            row = self.q.get_upload.one(self.conn, upload_id=key)
        else:
            row = self.q.get_upload_for_user.one(self.conn, upload_id=key, user_id=owner)
        return _upload(row) if row else None

    def list_for_user(self, user_id: uuid.UUID | str) -> list[CsvUpload]:
        """The user's uploads, newest first."""
        rows = self.q.list_uploads_for_user.many(self.conn, user_id=_user_uuid(user_id))
        return [_upload(r) for r in rows]

    def rows(self, upload_id: int | str, *, after: int = 0, limit: int = 1000) -> list[CsvRow]:
        """Up to ``limit`` rows with row_index > ``after``, in file order ([] if unknown).

        ``after`` and ``limit`` must be integers (InvalidInput otherwise), ``limit`` >= 1.
        """
        if not _is_int(after):
            raise InvalidInput(f"after must be an integer row_index, not {after!r}")
        if not _is_int(limit) or limit < 1:
            raise InvalidInput(f"limit must be an integer of at least 1, not {limit!r}")
        upload = self.get(upload_id)
        if upload is None:
            return []
        headers = upload.headers
        page = self.q.rows_page.many(
            self.conn,
            upload_id=upload.id,
            after=min(max(after, 0), _MAX_BIGINT),
            row_limit=min(limit, _MAX_BIGINT),
        )
        return [
            CsvRow(upload.id, r["row_index"], dict(zip(headers, r["values"], strict=True)))
            for r in page
        ]

    def export_csv(self, upload_id: int | str, out: IO[bytes]) -> int:
        """Write a completed upload as UTF-8 CSV (header first, LF line ends); the row count."""
        upload = self.get(upload_id)
        if upload is None:
            raise NotFound(f"no CSV upload {upload_id}")
        if upload.status != "completed":
            raise InvalidInput(f"upload {upload_id} is {upload.status}, not completed")
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(upload.headers)
        out.write(header.getvalue().encode())
        with self._atomic():
            if self.conn.info.encoding != "utf-8":  # the output is UTF-8 whatever the session uses
                self.q.utf8_client_encoding.exec(self.conn)
            if len(upload.headers) <= SERVER_EXPORT_COLUMNS:
                count = self._export_by_server(upload, out)
            else:
                count = self._export_by_client(upload, out)
        if count != upload.total_rows:  # cannot happen unless rows were edited by hand
            raise Conflict(f"upload {upload.id} has {count} rows, not {upload.total_rows}")
        return count

    def _export_by_server(self, upload: CsvUpload, out: IO[bytes]) -> int:
        values = pgsql.Identifier("v")
        columns = pgsql.SQL(", ").join(
            pgsql.SQL("{}[{}]").format(values, pgsql.Literal(i))
            for i in range(1, len(upload.headers) + 1)
        )
        count = 0
        buffered: list[bytes] = []
        size = 0
        with self.q.export_rows.copy(
            self.conn, identifiers={"columns": columns}, upload_id=upload.id
        ) as copy:
            for data in copy:
                chunk = bytes(data)
                buffered.append(chunk)
                size += len(chunk)
                count += 1
                if size >= _WRITE_BUFFER:
                    out.write(b"".join(buffered))
                    buffered.clear()
                    size = 0
        if buffered:
            out.write(b"".join(buffered))
        return count

    def _export_by_client(self, upload: CsvUpload, out: IO[bytes]) -> int:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        writer = csv.writer(text, lineterminator="\n")
        count = 0
        try:
            with self.q.export_arrays.copy(self.conn, upload_id=upload.id) as copy:
                copy.set_types(["text[]"])
                for (values,) in copy.rows():
                    writer.writerow(values)
                    count += 1
            text.flush()
        finally:
            text.detach()
        return count

    def delete(self, upload_id: int | str) -> None:
        """Delete the upload and its rows (nothing happens if it is unknown)."""
        key = _lookup_id(upload_id)
        if key is None:
            return
        with self._atomic():
            self.q.delete_upload.execrows(self.conn, upload_id=key)

    def cleanup(self, *, older_than: float = DEFAULT_ABANDONED_AFTER) -> list[CsvUpload]:
        """Fail the 'processing' uploads whose importer died; the uploads it failed.

        An importer holds its upload's advisory lock for the whole load, so an
        upload whose lock is free (and idle for ``older_than`` seconds, which
        covers the instant between its insert and the lock) was abandoned.
        ``older_than`` must be a number of seconds from 0 to MAX_ABANDONED_AFTER
        (InvalidInput otherwise); 0 can fail a live import caught in that instant.
        """
        if (
            isinstance(older_than, bool)
            or not isinstance(older_than, int | float)
            or not 0 <= older_than <= MAX_ABANDONED_AFTER  # also rejects NaN
        ):
            raise InvalidInput(
                f"older_than must be 0 to {MAX_ABANDONED_AFTER:.0f} seconds, not {older_than!r}"
            )
        with self._atomic():
            rows = self.q.fail_abandoned.many(
                self.conn,
                older_than=float(older_than),
                error_message="import abandoned: the importing process died before it finished",
            )
        return [_upload(r) for r in rows]

    def user_id_by_email(self, email: str) -> uuid.UUID | None:
        """The id of the user with that email (case-insensitive), or None."""
        from trampolin.auth import AuthAdapter

        user = AuthAdapter(self.conn).get_user_by_email(email)
        return user.id if user else None


class _CountingReader(io.RawIOBase):
    """Reads the source for TextIOWrapper, counting bytes and reporting progress."""

    def __init__(self, raw: _BinaryReader, progress: Progress | None) -> None:
        super().__init__()
        self._raw = raw
        self._progress = progress
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        n = len(data)
        view[:n] = data
        if n:
            self.bytes_read += n
            if self._progress is not None:
                self._progress(self.bytes_read)
        return n


@contextmanager
def _open_source(source: Source) -> Iterator[tuple[_BinaryReader, str]]:
    """The source as a binary reader and a default filename; paths are opened and closed here."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            yield handle, path.name
    else:
        if isinstance(source.read(0), str):
            raise InvalidInput("the source must be a binary file (open it with 'rb')")
        name = getattr(source, "name", None)
        yield source, Path(name).name if isinstance(name, str) else "upload.csv"


def _text_codec(encoding: str) -> codecs.CodecInfo:
    """The codec for a text encoding name; InvalidInput if unknown or not a text encoding."""
    try:
        codec = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise InvalidInput(f"unknown encoding {encoding!r}") from None
    if not getattr(codec, "_is_text_encoding", True):  # base64, zlib, rot13 ...
        raise InvalidInput(f"{encoding!r} is not a text encoding")
    return codec


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _lookup_id(value: object) -> int | None:
    """An upload id to look up; None for anything that cannot be one (so: not found)."""
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 19:
            return None
        value = int(text)
    if not _is_int(value):
        raise InvalidInput(f"an upload id must be an integer, not {type(value).__name__}")
    assert isinstance(value, int)
    return value if 1 <= value <= _MAX_BIGINT else None


def _user_uuid(value: uuid.UUID | str) -> uuid.UUID:
    """A user id as a UUID; InvalidInput if it is not one."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(f"not a user id: {value!r}") from None


def _first_record(reader: Any) -> list[str]:
    """The first non-blank record (the header), skipping leading blank lines."""
    for row in reader:
        if row:
            return list(row)
    raise CsvFormatError("the file is empty: a header row is required", line=1)


def _breaks(text: str) -> int:
    """Physical line breaks in text (CRLF, LF and CR each count once)."""
    return text.count("\r") + text.count("\n") - text.count("\r\n")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class _Errors:
    """Builds CsvFormatErrors that name the physical line where the trouble is."""

    def __init__(self, reader: Any, encoding: str) -> None:
        self.reader = reader
        self.encoding = encoding

    def _start(self, row: list[str]) -> int:
        """First line of the record just read (it may span several lines)."""
        return int(self.reader.line_num) - _breaks(",".join(row))

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
                    f"duplicate column name {name!r} in the header "
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
                    f"NUL byte (0x00) in column {headers[i]!r}: PostgreSQL text cannot hold it",
                    line=self._line_at(row, i, offset),
                )
        return CsvFormatError("NUL byte (0x00)", line=self._start(row))  # pragma: no cover

    def undecodable(self, row: list[str]) -> CsvFormatError:
        for i, value in enumerate(row):
            for offset, char in enumerate(value):
                if "\udc80" <= char <= "\udcff":
                    byte = ord(char) - 0xDC00
                    return CsvFormatError(
                        f"byte 0x{byte:02x} is not valid {self.encoding} "
                        "(give the file's encoding if it is not UTF-8)",
                        line=self._line_at(row, i, offset),
                    )
        return CsvFormatError(f"text that is not valid {self.encoding}", line=self._start(row))

    def from_csv(self, exc: csv.Error, *, after: int) -> CsvFormatError:
        """The error for csv's exception; ``after``: the line where the last record ended."""
        message = str(exc)
        line = int(self.reader.line_num)
        start = after + 1
        if "unexpected end of data" in message:
            return CsvFormatError(
                "the file ends inside a quoted field: unterminated quote "
                f"(in the record that starts on line {start})",
                line=line,
            )
        if "expected after" in message:
            return CsvFormatError(
                "a closing quote is followed by a character other than a comma or a line end "
                '(a quote inside a quoted field must be doubled: "")',
                line=line,
            )
        if "field larger than field limit" in message:
            return CsvFormatError(
                f"a field is longer than {MAX_FIELD_CHARS // (1024 * 1024)} MiB characters "
                f"(record starting on line {start}; an unterminated quote?)",
                line=line,
            )
        return CsvFormatError(message, line=line)
