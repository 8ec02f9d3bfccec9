"""CSV uploads: stream a file into csv_rows with COPY, all or nothing; read and export it back.

``AsyncCsvUploads(aconn)`` is written here; ``CsvUploads(conn)``, its sync twin, is
generated at the end (make twins). The format rules are trampolin.csv_format's.

``import_csv`` works in up to three ``atomic`` blocks: insert the upload as
'processing' (failing first the user's uploads whose importer died); load every
row holding the upload's advisory lock and mark it 'completed'; on failure only,
mark it 'failed' with the reason. On an autocommit connection they are three short
transactions, so that others see 'processing' while the rows load, then
'completed' with every row, never a partial set. Inside the caller's transaction
they are savepoints: a failed load still leaves zero rows, and the caller's commit
or rollback decides whether the upload exists at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import AbstractContextManager, closing, suppress
from functools import partial
from typing import Any, overload

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg import sql as pgsql
from psycopg.rows import DictRow

from trampolin import csv_format, queries
from trampolin.csv_feed import AsyncSource, ByteFeed, ParseThread, Pull, Source, opened
from trampolin.csv_format import CopyChunk, CopyLines
from trampolin.csv_records import (
    ABANDONED,
    DEFAULT_ABANDONED_AFTER,
    IMPORT_START_WINDOW,
    MAX_ABANDONED_AFTER,
    SERVER_EXPORT_COLUMNS,
    AsyncSink,
    CsvRow,
    CsvUpload,
    Notice,
    Progress,
    Sink,
    upload_from_row,
)
from trampolin.db import atomic
from trampolin.errors import Conflict, CsvFormatError, InvalidInput, NotFound
from trampolin.values import MAX_BIGINT, bigint_key, first_line, is_int, text, user_key

_q = queries.load("csv_uploads")

__all__ = [
    "ABANDONED",
    "DEFAULT_ABANDONED_AFTER",
    "IMPORT_START_WINDOW",
    "MAX_ABANDONED_AFTER",
    "SERVER_EXPORT_COLUMNS",
    "AsyncCsvUploads",
    "AsyncSink",
    "CsvRow",
    "CsvUpload",
    "CsvUploads",
    "Sink",
]


class AsyncCsvUploads:
    """CSV uploads and their rows on one connection (transactions: see the module docstring)."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn

    async def import_csv(
        self,
        *,
        user_id: uuid.UUID | str,
        source: AsyncSource,
        filename: str | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
        progress: Progress | None = None,
        notice: Notice | None = None,
    ) -> CsvUpload:
        """Load a CSV file as a new completed upload; CsvFormatError naming the line if malformed.

        ``source``: a path, a binary file, an iterator of bytes or (async side) an
        async iterator of bytes such as a request body. Without ``encoding`` a
        byte-order mark chooses it, else UTF-8; without ``delimiter`` (',', ';',
        'tab') the header line does. ``progress`` gets the bytes read so far,
        ``notice`` a line per thing detected. A malformed file leaves the upload
        'failed' with no rows, its id in the error's ``upload_id``.
        """
        lines = CopyLines(encoding=encoding, delimiter=delimiter)
        owner = _owner(user_id)
        with _opened(self.conn, source) as (pull, name):
            upload_id = await self._insert(owner, text("filename", filename or name), user_id)
            try:
                done = await self._load(upload_id, lines, pull, progress, notice)
            except CsvFormatError as exc:
                exc.upload_id = upload_id
                await self._fail(upload_id, str(exc), lines.bytes_read)
                raise
            except BaseException as exc:  # also an interrupt, or a cancelled task
                if not self.conn.closed and not self.conn.broken:
                    with suppress(psycopg.Error):
                        await self._fail(upload_id, _aborted(exc), lines.bytes_read)
                raise
        return upload_from_row(done)

    async def _insert(self, owner: uuid.UUID, filename: str, given: object) -> int:
        """A new 'processing' upload, after failing the owner's dead ones (``given``: the id
        as the caller gave it, for NotFound)."""
        try:
            async with atomic(self.conn):
                await _q.fail_abandoned.many(
                    self.conn,
                    older_than=IMPORT_START_WINDOW,
                    user_id=owner,
                    upload_id=None,
                    error_message=ABANDONED,
                )
                row = await _q.insert_upload.one(self.conn, user_id=owner, filename=filename)
        except psycopg.errors.ForeignKeyViolation:
            raise NotFound(f"no user {given}") from None
        assert row is not None
        return int(row["id"])

    async def _load(
        self,
        upload_id: int,
        lines: CopyLines,
        pull: Pull,
        progress: Progress | None,
        notice: Notice | None,
    ) -> DictRow:
        """COPY every record under the upload's advisory lock and mark it completed."""
        async with atomic(self.conn):
            await _q.lock_upload.exec(self.conn, upload_id=upload_id)
            await self._utf8_session()
            if await _q.claim_upload.one(self.conn, upload_id=upload_id) is None:
                raise await self._not_claimed(upload_id)
            parse = partial(lines.chunks, upload_id=upload_id)
            async with (
                _q.copy_rows.copy(self.conn) as copy,
                _parsed(self.conn, parse, pull) as chunks,
            ):
                async for chunk in chunks:
                    if notice is not None:
                        for line in chunk.notices:
                            notice(line)
                    if chunk.data:
                        await copy.write(chunk.data)
                    if progress is not None:
                        progress(chunk.bytes_read)
            done = await _q.complete_upload.one(
                self.conn,
                upload_id=upload_id,
                headers=lines.headers,
                total_rows=lines.rows,
                file_size=lines.bytes_read,
            )
        assert done is not None
        return done

    async def _not_claimed(self, upload_id: int) -> Conflict:
        """Why the upload is no longer 'processing' when its rows are about to load."""
        row = await _q.get_upload.one(self.conn, upload_id=upload_id)
        if row is None:
            return Conflict(
                f"upload {upload_id} was deleted (or its user was) before its rows loaded"
            )
        if row["status"] == "failed":
            return Conflict(f"upload {upload_id} was failed by cleanup before its rows loaded")
        return Conflict(f"upload {upload_id} is {row['status']}, no longer processing")

    async def _fail(self, upload_id: int, message: str, file_size: int) -> None:
        async with atomic(self.conn):
            await _q.fail_upload.one(
                self.conn, upload_id=upload_id, error_message=message, file_size=file_size
            )

    async def get(
        self, upload_id: int | str, *, user_id: uuid.UUID | str | None = None
    ) -> CsvUpload | None:
        """The upload; None if unknown, or if ``user_id`` is given and does not own it.

        A decimal string is the number; any other string is the app's id of an
        adopted upload (its legacy_id, docs/adopt.md). An id that cannot be an
        upload's (-1, beyond bigint) is unknown too. A user id that is not a
        UUID is InvalidInput.
        """
        key = bigint_key("an upload id", upload_id)
        owner = None if user_id is None else _owner(user_id)
        if key is None:
            legacy = _legacy_id(upload_id)
            if legacy is None:
                return None
            row = await _q.get_upload_by_legacy_id.one(self.conn, legacy_id=legacy, user_id=owner)
        elif owner is None:
            row = await _q.get_upload.one(self.conn, upload_id=key)
        else:
            row = await _q.get_upload_for_user.one(self.conn, upload_id=key, user_id=owner)
        return upload_from_row(row) if row else None

    async def list_for_user(self, user_id: uuid.UUID | str) -> list[CsvUpload]:
        """The user's uploads, newest first."""
        rows = await _q.list_uploads_for_user.many(self.conn, user_id=_owner(user_id))
        return [upload_from_row(r) for r in rows]

    async def rows(
        self, upload_id: int | str, *, after: int = 0, limit: int = 1000
    ) -> list[CsvRow]:
        """Up to ``limit`` rows with row_index > ``after``, in file order ([] if unknown).

        ``after`` and ``limit`` must be integers (InvalidInput otherwise), ``limit`` >= 1.
        """
        if not is_int(after):
            raise InvalidInput(f"after must be an integer row_index, not {after!r}")
        if not is_int(limit) or limit < 1:
            raise InvalidInput(f"limit must be an integer of at least 1, not {limit!r}")
        upload = await self.get(upload_id)
        if upload is None:
            return []
        page = await _q.rows_page.many(
            self.conn,
            upload_id=upload.id,
            after=min(max(after, 0), MAX_BIGINT),
            row_limit=min(limit, MAX_BIGINT),
        )
        names = upload.headers
        return [
            CsvRow(upload.id, r["row_index"], dict(zip(names, r["values"], strict=True)))
            for r in page
        ]

    async def export_csv(
        self, upload_id: int | str, out: AsyncSink, *, delimiter: str = ","
    ) -> int:
        """Write a completed upload to ``out`` as CSV (UTF-8, header first, LF line ends).

        Returns the row count. ``out`` is anything with an async ``write(bytes)``.
        """
        upload = await self._exportable(upload_id)
        chunks = self._export(upload, csv_format.parse_delimiter(delimiter))
        try:
            async for data in chunks:
                await out.write(data)
        finally:
            await chunks.aclose()  # ends the COPY if ``out`` failed
        return upload.total_rows

    async def export_csv_chunks(
        self, upload_id: int | str, *, delimiter: str = ","
    ) -> AsyncGenerator[bytes, None]:
        """export_csv as chunks of about 256 KiB, for a streaming response.

        NotFound and InvalidInput come here, before any chunk. The iterator holds a
        COPY on the connection: iterate it to the end, or close it (``aclose()``).
        """
        upload = await self._exportable(upload_id)
        return self._export(upload, csv_format.parse_delimiter(delimiter))

    async def _exportable(self, upload_id: int | str) -> CsvUpload:
        upload = await self.get(upload_id)
        if upload is None:
            raise NotFound(f"no CSV upload {upload_id}")
        if upload.status != "completed":
            raise InvalidInput(f"upload {upload_id} is {upload.status}, not completed")
        return upload

    def _export(self, upload: CsvUpload, delimiter: str) -> AsyncGenerator[bytes, None]:
        """The CSV, as the server writes it, or the client beyond SERVER_EXPORT_COLUMNS."""
        if len(upload.headers) <= SERVER_EXPORT_COLUMNS:
            return self._written_by_server(upload, delimiter)
        return self._written_by_client(upload, delimiter)

    async def _written_by_server(
        self, upload: CsvUpload, delimiter: str
    ) -> AsyncGenerator[bytes, None]:
        """The header, then COPY ... TO STDOUT (FORMAT csv) of v[1], ..., v[n], in chunks."""
        yield csv_format.header_line(upload.headers, delimiter)
        columns = pgsql.SQL(", ").join(
            pgsql.SQL("v[{}]").format(pgsql.Literal(i)) for i in range(1, len(upload.headers) + 1)
        )
        # COPY options cannot be parameters: the delimiter is , ; or tab (parse_delimiter).
        names = {"columns": columns, "delimiter": pgsql.Literal(delimiter)}
        count, buffered, size = 0, [], 0
        async with atomic(self.conn):
            await self._utf8_session()
            async with _q.export_rows.copy(
                self.conn, identifiers=names, upload_id=upload.id
            ) as copy:
                while data := await copy.read():  # a row per read (cheaper than ``async for``)
                    buffered.append(bytes(data))
                    size += len(data)
                    count += 1
                    if size >= csv_format.COPY_CHUNK:
                        yield b"".join(buffered)
                        buffered.clear()
                        size = 0
        if buffered:
            yield b"".join(buffered)
        _check_count(upload, count)

    async def _written_by_client(
        self, upload: CsvUpload, delimiter: str
    ) -> AsyncGenerator[bytes, None]:
        """The header, then the value arrays (COPY binary) written as CSV by Python, in chunks."""
        written = csv_format.CsvText(delimiter)
        written.row(upload.headers)
        count = 0
        async with atomic(self.conn):
            await self._utf8_session()
            async with _q.export_arrays.copy(self.conn, upload_id=upload.id) as copy:
                copy.set_types(["text[]"])
                async for (values,) in copy.rows():
                    written.row(values)
                    count += 1
                    if written.size >= csv_format.COPY_CHUNK:
                        yield written.take()
        yield written.take()
        _check_count(upload, count)

    async def _utf8_session(self) -> None:
        """COPY data is UTF-8 bytes, whatever client encoding the connection uses."""
        if self.conn.info.encoding != "utf-8":
            await _q.utf8_client_encoding.exec(self.conn)  # SET LOCAL: until the block ends

    async def _number(self, upload_id: int | str) -> int | None:
        """The upload's number, given it or an adopted upload's app id; None if unknown."""
        key = bigint_key("an upload id", upload_id)
        if key is None:
            adopted = await self.get(upload_id)
            return None if adopted is None else adopted.id
        return key

    async def delete(self, upload_id: int | str) -> CsvUpload | None:
        """Delete the upload and its rows; the upload as it was (None if unknown)."""
        key = await self._number(upload_id)
        if key is None:
            return None
        async with atomic(self.conn):
            row = await _q.delete_upload.one(self.conn, upload_id=key)
        return upload_from_row(row) if row else None

    async def cleanup(
        self,
        *,
        older_than: float = DEFAULT_ABANDONED_AFTER,
        user_id: uuid.UUID | str | None = None,
        upload_id: int | str | None = None,
    ) -> list[CsvUpload]:
        """Fail the 'processing' uploads whose importer died (only the user's, or that upload).

        An importer holds its upload's advisory lock for the whole load, so an upload
        whose lock is free and that is idle for ``older_than`` seconds (0 to
        MAX_ABANDONED_AFTER; below IMPORT_START_WINDOW it can catch a live import
        between its insert and its lock) was abandoned. The uploads it failed.
        """
        if (
            isinstance(older_than, bool)
            or not isinstance(older_than, int | float)
            or not 0 <= older_than <= MAX_ABANDONED_AFTER  # also rejects NaN
        ):
            raise InvalidInput(
                f"older_than must be 0 to {MAX_ABANDONED_AFTER:.0f} seconds, not {older_than!r}"
            )
        owner = None if user_id is None else _owner(user_id)
        key = None if upload_id is None else await self._number(upload_id)
        if upload_id is not None and key is None:
            return []
        async with atomic(self.conn):
            rows = await _q.fail_abandoned.many(
                self.conn,
                older_than=float(older_than),
                user_id=owner,
                upload_id=key,
                error_message=ABANDONED,
            )
        return [upload_from_row(r) for r in rows]


def _aborted(exc: BaseException) -> str:
    """The failed upload's message when its import stopped on ``exc``."""
    why = first_line(exc) if isinstance(exc, Exception) else type(exc).__name__
    return f"import aborted: {why}"  # KeyboardInterrupt, SystemExit, CancelledError by name


def _legacy_id(upload_id: object) -> str | None:
    """The string an adopted upload's legacy_id may hold; None if no row can have it."""
    if not isinstance(upload_id, str):
        return None
    try:
        return text("an upload id", upload_id)
    except InvalidInput:  # NUL, lone surrogate: no row has such an id
        return None


def _check_count(upload: CsvUpload, count: int) -> None:
    if count != upload.total_rows:  # cannot happen unless rows were edited by hand
        raise Conflict(f"upload {upload.id} has {count} rows, not {upload.total_rows}")


def _owner(value: uuid.UUID | str) -> uuid.UUID:
    """A user id as a UUID; InvalidInput if it cannot be one."""
    key = user_key(value)
    if key is None:
        raise InvalidInput(f"not a user id: {value!r}")
    return key


_Parse = Callable[[ByteFeed], Generator[CopyChunk, None, None]]


def _opened(
    conn: Connection[Any] | AsyncConnection[Any], source: AsyncSource
) -> AbstractContextManager[tuple[Pull, str]]:
    """csv_feed.opened(source); an async stream only for an async connection."""
    return opened(source, allow_async=isinstance(conn, AsyncConnection))


@overload
def _parsed(
    conn: Connection[Any], parse: _Parse, pull: Pull
) -> closing[Generator[CopyChunk, None, None]]: ...
@overload
def _parsed(conn: AsyncConnection[Any], parse: _Parse, pull: Pull) -> ParseThread[CopyChunk]: ...
def _parsed(conn: Connection[Any] | AsyncConnection[Any], parse: _Parse, pull: Pull) -> Any:
    """The chunks of ``parse`` over ``pull``, in a context that ends the parse.

    The one part of an import that differs between the twins: on a sync connection
    the parse is the generator itself; on an async one it runs in a worker thread
    (csv_feed.ParseThread), since the csv reader pulls its input and never awaits.
    """
    if isinstance(conn, AsyncConnection):
        return ParseThread(parse, pull)
    assert callable(pull)
    return closing(parse(ByteFeed(pull)))


# -- Sync twins: generated from the Async classes above by tools/async_to_sync.py --


class CsvUploads:
    """CSV uploads and their rows on one connection (transactions: see the module docstring)."""

    def __init__(self, conn: Connection[Any]) -> None:
        self.conn = conn

    def import_csv(
        self,
        *,
        user_id: uuid.UUID | str,
        source: Source,
        filename: str | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
        progress: Progress | None = None,
        notice: Notice | None = None,
    ) -> CsvUpload:
        """Load a CSV file as a new completed upload; CsvFormatError naming the line if malformed.

        ``source``: a path, a binary file, an iterator of bytes or (async side) an
        async iterator of bytes such as a request body. Without ``encoding`` a
        byte-order mark chooses it, else UTF-8; without ``delimiter`` (',', ';',
        'tab') the header line does. ``progress`` gets the bytes read so far,
        ``notice`` a line per thing detected. A malformed file leaves the upload
        'failed' with no rows, its id in the error's ``upload_id``.
        """
        lines = CopyLines(encoding=encoding, delimiter=delimiter)
        owner = _owner(user_id)
        with _opened(self.conn, source) as (pull, name):
            upload_id = self._insert(owner, text("filename", filename or name), user_id)
            try:
                done = self._load(upload_id, lines, pull, progress, notice)
            except CsvFormatError as exc:
                exc.upload_id = upload_id
                self._fail(upload_id, str(exc), lines.bytes_read)
                raise
            except BaseException as exc:  # also an interrupt, or a cancelled task
                if not self.conn.closed and not self.conn.broken:
                    with suppress(psycopg.Error):
                        self._fail(upload_id, _aborted(exc), lines.bytes_read)
                raise
        return upload_from_row(done)

    def _insert(self, owner: uuid.UUID, filename: str, given: object) -> int:
        """A new 'processing' upload, after failing the owner's dead ones (``given``: the id
        as the caller gave it, for NotFound)."""
        try:
            with atomic(self.conn):
                _q.fail_abandoned.many(
                    self.conn,
                    older_than=IMPORT_START_WINDOW,
                    user_id=owner,
                    upload_id=None,
                    error_message=ABANDONED,
                )
                row = _q.insert_upload.one(self.conn, user_id=owner, filename=filename)
        except psycopg.errors.ForeignKeyViolation:
            raise NotFound(f"no user {given}") from None
        assert row is not None
        return int(row["id"])

    def _load(
        self,
        upload_id: int,
        lines: CopyLines,
        pull: Pull,
        progress: Progress | None,
        notice: Notice | None,
    ) -> DictRow:
        """COPY every record under the upload's advisory lock and mark it completed."""
        with atomic(self.conn):
            _q.lock_upload.exec(self.conn, upload_id=upload_id)
            self._utf8_session()
            if _q.claim_upload.one(self.conn, upload_id=upload_id) is None:
                raise self._not_claimed(upload_id)
            parse = partial(lines.chunks, upload_id=upload_id)
            with (
                _q.copy_rows.copy(self.conn) as copy,
                _parsed(self.conn, parse, pull) as chunks,
            ):
                for chunk in chunks:
                    if notice is not None:
                        for line in chunk.notices:
                            notice(line)
                    if chunk.data:
                        copy.write(chunk.data)
                    if progress is not None:
                        progress(chunk.bytes_read)
            done = _q.complete_upload.one(
                self.conn,
                upload_id=upload_id,
                headers=lines.headers,
                total_rows=lines.rows,
                file_size=lines.bytes_read,
            )
        assert done is not None
        return done

    def _not_claimed(self, upload_id: int) -> Conflict:
        """Why the upload is no longer 'processing' when its rows are about to load."""
        row = _q.get_upload.one(self.conn, upload_id=upload_id)
        if row is None:
            return Conflict(
                f"upload {upload_id} was deleted (or its user was) before its rows loaded"
            )
        if row["status"] == "failed":
            return Conflict(f"upload {upload_id} was failed by cleanup before its rows loaded")
        return Conflict(f"upload {upload_id} is {row['status']}, no longer processing")

    def _fail(self, upload_id: int, message: str, file_size: int) -> None:
        with atomic(self.conn):
            _q.fail_upload.one(
                self.conn, upload_id=upload_id, error_message=message, file_size=file_size
            )

    def get(
        self, upload_id: int | str, *, user_id: uuid.UUID | str | None = None
    ) -> CsvUpload | None:
        """The upload; None if unknown, or if ``user_id`` is given and does not own it.

        A decimal string is the number; any other string is the app's id of an
        adopted upload (its legacy_id, docs/adopt.md). An id that cannot be an
        upload's (-1, beyond bigint) is unknown too. A user id that is not a
        UUID is InvalidInput.
        """
        key = bigint_key("an upload id", upload_id)
        owner = None if user_id is None else _owner(user_id)
        if key is None:
            legacy = _legacy_id(upload_id)
            if legacy is None:
                return None
            row = _q.get_upload_by_legacy_id.one(self.conn, legacy_id=legacy, user_id=owner)
        elif owner is None:
            row = _q.get_upload.one(self.conn, upload_id=key)
        else:
            row = _q.get_upload_for_user.one(self.conn, upload_id=key, user_id=owner)
        return upload_from_row(row) if row else None

    def list_for_user(self, user_id: uuid.UUID | str) -> list[CsvUpload]:
        """The user's uploads, newest first."""
        rows = _q.list_uploads_for_user.many(self.conn, user_id=_owner(user_id))
        return [upload_from_row(r) for r in rows]

    def rows(self, upload_id: int | str, *, after: int = 0, limit: int = 1000) -> list[CsvRow]:
        """Up to ``limit`` rows with row_index > ``after``, in file order ([] if unknown).

        ``after`` and ``limit`` must be integers (InvalidInput otherwise), ``limit`` >= 1.
        """
        if not is_int(after):
            raise InvalidInput(f"after must be an integer row_index, not {after!r}")
        if not is_int(limit) or limit < 1:
            raise InvalidInput(f"limit must be an integer of at least 1, not {limit!r}")
        upload = self.get(upload_id)
        if upload is None:
            return []
        page = _q.rows_page.many(
            self.conn,
            upload_id=upload.id,
            after=min(max(after, 0), MAX_BIGINT),
            row_limit=min(limit, MAX_BIGINT),
        )
        names = upload.headers
        return [
            CsvRow(upload.id, r["row_index"], dict(zip(names, r["values"], strict=True)))
            for r in page
        ]

    def export_csv(self, upload_id: int | str, out: Sink, *, delimiter: str = ",") -> int:
        """Write a completed upload to ``out`` as CSV (UTF-8, header first, LF line ends).

        Returns the row count. ``out`` is anything with an async ``write(bytes)``.
        """
        upload = self._exportable(upload_id)
        chunks = self._export(upload, csv_format.parse_delimiter(delimiter))
        try:
            for data in chunks:
                out.write(data)
        finally:
            chunks.close()  # ends the COPY if ``out`` failed
        return upload.total_rows

    def export_csv_chunks(
        self, upload_id: int | str, *, delimiter: str = ","
    ) -> Generator[bytes, None]:
        """export_csv as chunks of about 256 KiB, for a streaming response.

        NotFound and InvalidInput come here, before any chunk. The iterator holds a
        COPY on the connection: iterate it to the end, or close it (``aclose()``).
        """
        upload = self._exportable(upload_id)
        return self._export(upload, csv_format.parse_delimiter(delimiter))

    def _exportable(self, upload_id: int | str) -> CsvUpload:
        upload = self.get(upload_id)
        if upload is None:
            raise NotFound(f"no CSV upload {upload_id}")
        if upload.status != "completed":
            raise InvalidInput(f"upload {upload_id} is {upload.status}, not completed")
        return upload

    def _export(self, upload: CsvUpload, delimiter: str) -> Generator[bytes, None]:
        """The CSV, as the server writes it, or the client beyond SERVER_EXPORT_COLUMNS."""
        if len(upload.headers) <= SERVER_EXPORT_COLUMNS:
            return self._written_by_server(upload, delimiter)
        return self._written_by_client(upload, delimiter)

    def _written_by_server(self, upload: CsvUpload, delimiter: str) -> Generator[bytes, None]:
        """The header, then COPY ... TO STDOUT (FORMAT csv) of v[1], ..., v[n], in chunks."""
        yield csv_format.header_line(upload.headers, delimiter)
        columns = pgsql.SQL(", ").join(
            pgsql.SQL("v[{}]").format(pgsql.Literal(i)) for i in range(1, len(upload.headers) + 1)
        )
        # COPY options cannot be parameters: the delimiter is , ; or tab (parse_delimiter).
        names = {"columns": columns, "delimiter": pgsql.Literal(delimiter)}
        count, buffered, size = 0, [], 0
        with atomic(self.conn):
            self._utf8_session()
            with _q.export_rows.copy(self.conn, identifiers=names, upload_id=upload.id) as copy:
                while data := copy.read():  # a row per read (cheaper than ``async for``)
                    buffered.append(bytes(data))
                    size += len(data)
                    count += 1
                    if size >= csv_format.COPY_CHUNK:
                        yield b"".join(buffered)
                        buffered.clear()
                        size = 0
        if buffered:
            yield b"".join(buffered)
        _check_count(upload, count)

    def _written_by_client(self, upload: CsvUpload, delimiter: str) -> Generator[bytes, None]:
        """The header, then the value arrays (COPY binary) written as CSV by Python, in chunks."""
        written = csv_format.CsvText(delimiter)
        written.row(upload.headers)
        count = 0
        with atomic(self.conn):
            self._utf8_session()
            with _q.export_arrays.copy(self.conn, upload_id=upload.id) as copy:
                copy.set_types(["text[]"])
                for (values,) in copy.rows():
                    written.row(values)
                    count += 1
                    if written.size >= csv_format.COPY_CHUNK:
                        yield written.take()
        yield written.take()
        _check_count(upload, count)

    def _utf8_session(self) -> None:
        """COPY data is UTF-8 bytes, whatever client encoding the connection uses."""
        if self.conn.info.encoding != "utf-8":
            _q.utf8_client_encoding.exec(self.conn)  # SET LOCAL: until the block ends

    def _number(self, upload_id: int | str) -> int | None:
        """The upload's number, given it or an adopted upload's app id; None if unknown."""
        key = bigint_key("an upload id", upload_id)
        if key is None:
            adopted = self.get(upload_id)
            return None if adopted is None else adopted.id
        return key

    def delete(self, upload_id: int | str) -> CsvUpload | None:
        """Delete the upload and its rows; the upload as it was (None if unknown)."""
        key = self._number(upload_id)
        if key is None:
            return None
        with atomic(self.conn):
            row = _q.delete_upload.one(self.conn, upload_id=key)
        return upload_from_row(row) if row else None

    def cleanup(
        self,
        *,
        older_than: float = DEFAULT_ABANDONED_AFTER,
        user_id: uuid.UUID | str | None = None,
        upload_id: int | str | None = None,
    ) -> list[CsvUpload]:
        """Fail the 'processing' uploads whose importer died (only the user's, or that upload).

        An importer holds its upload's advisory lock for the whole load, so an upload
        whose lock is free and that is idle for ``older_than`` seconds (0 to
        MAX_ABANDONED_AFTER; below IMPORT_START_WINDOW it can catch a live import
        between its insert and its lock) was abandoned. The uploads it failed.
        """
        if (
            isinstance(older_than, bool)
            or not isinstance(older_than, int | float)
            or not 0 <= older_than <= MAX_ABANDONED_AFTER  # also rejects NaN
        ):
            raise InvalidInput(
                f"older_than must be 0 to {MAX_ABANDONED_AFTER:.0f} seconds, not {older_than!r}"
            )
        owner = None if user_id is None else _owner(user_id)
        key = None if upload_id is None else self._number(upload_id)
        if upload_id is not None and key is None:
            return []
        with atomic(self.conn):
            rows = _q.fail_abandoned.many(
                self.conn,
                older_than=float(older_than),
                user_id=owner,
                upload_id=key,
                error_message=ABANDONED,
            )
        return [upload_from_row(r) for r in rows]
