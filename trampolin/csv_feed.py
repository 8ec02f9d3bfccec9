"""The bytes of an import: where they come from, what they are, how they reach the parse.

``opened(source)`` turns a path, a binary file, an iterator of bytes or an async
iterator of bytes into something to pull chunks from; the parse reads any of them
through one ``ByteFeed``, which also says how to decode them (a byte-order mark, or
UTF-8) and refuses what is not text (a spreadsheet, a binary file). ``ParseThread``
runs the synchronous parse beside an event loop. No database here.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import io
import os
import threading
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Iterator,
)
from contextlib import closing, contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from trampolin.errors import CsvFormatError, InvalidInput

READ_CHUNK = 1024 * 1024
"""Bytes read from the source, and decoded, at a time."""

HEAD_BYTES = 8 * 1024
"""Bytes looked at before parsing: a byte-order mark, or signs of a binary file."""

# Byte-order marks, longest first (UTF-32 LE starts like UTF-16 LE): the mark, how to
# say it, the codec that decodes the file and drops the mark, and the encodings a
# caller may name for such a file.
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 LE", "utf-32", ("utf-32", "utf-32-le")),
    (b"\x00\x00\xfe\xff", "UTF-32 BE", "utf-32", ("utf-32", "utf-32-be")),
    (b"\xef\xbb\xbf", "UTF-8", "utf-8-sig", ("utf-8", "utf-8-sig")),
    (b"\xff\xfe", "UTF-16 LE", "utf-16", ("utf-16", "utf-16-le")),
    (b"\xfe\xff", "UTF-16 BE", "utf-16", ("utf-16", "utf-16-be")),
)
_WIDE = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be")

# Known starts of files that are not text, and what to do about them.
_SAVE = "save it as CSV first"
_ZIP = b"PK\x03\x04"
_SIGNATURES = (
    (_ZIP, "a ZIP archive", _SAVE),  # also .xlsx and .ods: see _zip_kind
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an old Excel .xls workbook (or another Office file)",
        _SAVE,
    ),
    (b"%PDF-", "a PDF document", _SAVE),
    (b"\x1f\x8b", "gzip-compressed", "decompress it first"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract it first"),
    (b"Rar!\x1a\x07", "a RAR archive", "extract it first"),
    (b"\x7fELF", "an executable program (ELF)", _SAVE),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", _SAVE),
    (b"\xff\xd8\xff", "a JPEG image", _SAVE),
    (b"GIF87a", "a GIF image", _SAVE),
    (b"GIF89a", "a GIF image", _SAVE),
    (b"SQLite format 3\x00", "an SQLite database", _SAVE),
)


Source = str | os.PathLike[str] | IO[bytes] | Iterable[bytes]
AsyncSource = Source | AsyncIterable[bytes]
#: A source as the parse pulls it: a function returning its next chunk (b"" at the
#: end), or an async iterator that a ParseThread reads through the event loop.
Pull = Callable[[], bytes] | AsyncIterator[bytes]
T = TypeVar("T")


class ByteFeed(io.RawIOBase):
    """A readable binary stream over ``next_chunk()`` (b"" at the end) that counts bytes."""

    def __init__(self, next_chunk: Callable[[], bytes]) -> None:
        super().__init__()
        self._next_chunk = next_chunk
        self._pending = memoryview(b"")
        self._ended = False
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def decoding(self, encoding: str | None) -> tuple[str, tuple[str, ...]]:
        """The codec to read the bytes with, and a notice if a byte-order mark chose it.

        Without ``encoding``: the mark's, else UTF-8. CsvFormatError if a mark
        contradicts ``encoding``, or if the start shows that the file is not text.
        """
        head = self._head(HEAD_BYTES)
        for mark, label, codec, names in _BOMS:
            if not head.startswith(mark):
                continue
            if encoding is None:
                return codec, (f"found a {label} byte-order mark: reading as {label}",)
            if encoding not in names:
                raise CsvFormatError(
                    f"the file starts with a {label} byte-order mark, but the encoding given is "
                    f"{encoding} (leave the encoding out to follow the mark)",
                    line=1,
                )
            return codec, ()
        codec = encoding or "utf-8"
        what = binary_content(head, codec)
        if what is not None:
            raise CsvFormatError(f"not a text CSV: {what}")
        return codec, ()

    def _head(self, size: int) -> bytes:
        """Up to ``size`` bytes from the start (fewer only if the source ends), still unread."""
        while len(self._pending) < size and (data := self._fetch()):
            self._pending = memoryview(bytes(self._pending) + data)
        return bytes(self._pending[:size])

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            self._pending = memoryview(self._fetch())
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _fetch(self) -> bytes:
        data = b"" if self._ended else self._next_chunk()
        if not data:
            self._ended = True
        self.bytes_read += len(data)
        return data


@contextmanager
def opened(source: AsyncSource, *, allow_async: bool) -> Iterator[tuple[Pull, str]]:
    """The feed for ``source`` and its default filename; a path is opened (and closed) here."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            yield partial(handle.read, READ_CHUNK), path.name
    elif isinstance(source, bytes | bytearray | memoryview):
        raise InvalidInput("the source must be a file or a stream: wrap bytes in io.BytesIO")
    elif hasattr(source, "read"):
        if isinstance(source.read(0), str):
            raise InvalidInput("the source must be a binary file (open it with 'rb')")
        name = getattr(source, "name", None)
        yield partial(source.read, READ_CHUNK), Path(name).name if isinstance(name, str) else _NAME
    elif isinstance(source, AsyncIterable):
        if not allow_async:
            raise InvalidInput("an async byte stream needs AsyncCsvUploads")
        yield aiter(source), _NAME
    elif isinstance(source, Iterable):
        chunks = (bytes(chunk) for chunk in source if chunk)  # b"" is not yet the end
        yield partial(next, chunks, b""), _NAME
    else:
        raise InvalidInput(f"cannot read CSV from a {type(source).__name__}")


_NAME = "upload.csv"


class _Stopped(Exception):
    """The event loop has stopped listening: the worker thread ends."""


class ParseThread(Generic[T]):
    """The CSV parse in a worker thread, for an import on the event loop.

    Python's csv reader pulls its input and is synchronous, while COPY writes must
    be awaited on the loop. So the parse (CopyLines.chunks) runs in a thread of its
    own and hands each chunk of COPY text (~256 KiB) to the loop through an
    asyncio.Queue of two: when COPY falls behind, the thread waits, and memory stays
    bounded (two chunks queued, one being built, one being written, the decoder's
    1 MiB). An async byte stream is read the other way round: the thread asks the
    loop for the stream's next chunk and waits for it. Every wait of the thread is
    on a future of the loop, so stopping (an error, a cancelled task) is: set the
    flag, cancel the future it waits on; the thread ends at once, and ``__aexit__``
    waits for that, so nothing reads the source after the import has returned. (A
    thread inside a blocking read of a sync file ends when that read returns.) The
    GIL passes between the thread and the loop every few milliseconds, so the loop
    keeps serving other tasks during a long parse.

        async with ParseThread(parse, pull) as chunks:
            async for chunk in chunks:
                await copy.write(chunk.data)
    """

    def __init__(self, parse: Callable[[ByteFeed], Generator[T, None, None]], pull: Pull) -> None:
        self._parse = parse
        self._pull = pull
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[T | BaseException | None] = asyncio.Queue(2)
        self._lock = threading.Lock()
        self._stopped = False
        self._waiting: concurrent.futures.Future[Any] | None = None
        self._ended = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, name="trampolin-csv-parse", daemon=True)

    async def __aenter__(self) -> ParseThread[T]:
        self._thread.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with self._lock:
            self._stopped = True
            if self._waiting is not None:
                self._waiting.cancel()
        await asyncio.shield(self._ended)
        # The thread has finished its work; joining only waits out its last few
        # instructions, so that no parse thread outlives the import.
        self._thread.join()

    def __aiter__(self) -> ParseThread[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def _run(self) -> None:  # in the worker thread
        try:
            with closing(self._parse(ByteFeed(self._next_input))) as chunks:
                for chunk in chunks:
                    self._on_loop(self._queue.put(chunk))
            self._on_loop(self._queue.put(None))
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the loop, which raises it
            with suppress(_Stopped):
                self._on_loop(self._queue.put(exc))
        finally:
            with suppress(RuntimeError):  # the loop is closed: nobody waits any more
                self._loop.call_soon_threadsafe(_resolve, self._ended)

    def _next_input(self) -> bytes:  # in the worker thread
        if callable(self._pull):
            return self._pull()
        while (data := self._on_loop(_next_or_none(self._pull))) is not None:
            if data:  # a stream may yield b"" before its end (Starlette does)
                return bytes(data)
        return b""

    def _on_loop(self, work: Coroutine[Any, Any, Any]) -> Any:  # in the worker thread
        """Run ``work`` on the loop and wait for its result; _Stopped once stopped."""
        with self._lock:
            if self._stopped:
                work.close()
                raise _Stopped
            waiting = self._waiting = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return waiting.result()
        except concurrent.futures.CancelledError:
            raise _Stopped from None


async def _next_or_none(stream: AsyncIterator[bytes]) -> bytes | None:
    return await anext(stream, None)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def text_codec(encoding: str) -> codecs.CodecInfo:
    """The codec for a text encoding name; InvalidInput if unknown or not a text encoding."""
    try:
        codec = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise InvalidInput(f"unknown encoding {encoding!r}") from None
    if not getattr(codec, "_is_text_encoding", True):  # base64, zlib, rot13 ...
        raise InvalidInput(f"{encoding!r} is not a text encoding")
    return codec


def binary_content(head: bytes, codec: str) -> str | None:
    """What shows that a file starting with ``head`` is not text in ``codec``; None if nothing.

    A known signature, or a NUL byte where a text CSV cannot have one: in its
    header line, or anywhere in a head that does not even decode. (A NUL further
    down a text file is reported where it is, by line and column.)
    """
    for signature, what, advice in _SIGNATURES:
        if head.startswith(signature):
            return f"the file is {_zip_kind(head) if signature == _ZIP else what}; {advice}"
    nul = head.find(b"\x00")
    if nul < 0 or codec in _WIDE:
        return None
    first_break = min((i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0), default=-1)
    if 0 <= first_break < nul and _decodes(head, codec):
        return None
    return f"NUL byte (0x00) at byte {nul + 1} of the file; {_nul_advice(head)}"


def _zip_kind(head: bytes) -> str:
    if b"xl/" in head or b"[Content_Types].xml" in head:
        return "an Excel workbook (.xlsx)"
    if b"opendocument.spreadsheet" in head:
        return "an OpenDocument spreadsheet (.ods)"
    return "a ZIP archive"


def _nul_advice(head: bytes) -> str:
    """UTF-16 text without its byte-order mark has a NUL in every other byte."""
    odd, even = head[1::2].count(0), head[0::2].count(0)
    enough = max(4, len(head) // 4)  # ASCII text in UTF-16 has one in two
    if odd >= enough and odd > 4 * even:
        return "UTF-16 text without a byte-order mark? give the encoding utf-16-le"
    if even >= enough and even > 4 * odd:
        return "UTF-16 text without a byte-order mark? give the encoding utf-16-be"
    return _SAVE


def _decodes(head: bytes, codec: str) -> bool:
    try:
        codecs.getincrementaldecoder(codec)().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True
