"""Sources and the worker thread of trampolin.csv_feed (no database)."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from pathlib import Path

import pytest

from trampolin.csv_feed import ByteFeed, ParseThread, Pull, opened
from trampolin.errors import InvalidInput


def parse_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "trampolin-csv-parse"]


def read_all(feed: ByteFeed) -> Generator[bytes, None, None]:
    """A parse that hands on what it reads, 3 bytes at a time."""
    while data := feed.read(3):
        yield data


async def collect(pull: Pull) -> list[bytes]:
    async with ParseThread(read_all, pull) as chunks:
        return [chunk async for chunk in chunks]


def test_a_sync_source_is_read_in_the_thread() -> None:
    source = io.BytesIO(b"abcdefgh")
    assert asyncio.run(collect(lambda: source.read(2))) == [b"ab", b"cd", b"ef", b"gh"]
    assert parse_threads() == []


def test_an_async_stream_is_read_through_the_loop() -> None:
    seen: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for part in (b"abc", b"", b"defg", b""):  # b"" before the end, as Starlette sends
            seen.append(threading.get_ident())
            yield part

    assert b"".join(asyncio.run(collect(body()))) == b"abcdefg"
    assert set(seen) == {threading.get_ident()}  # pulled on the loop's thread


def test_an_error_of_the_parse_is_raised_on_the_loop() -> None:
    def broken(feed: ByteFeed) -> Generator[bytes, None, None]:
        yield feed.read(1)
        raise ValueError("bad byte")

    async def run() -> list[bytes]:
        got = []
        async with ParseThread(broken, lambda: b"x") as chunks:
            async for chunk in chunks:
                got.append(chunk)
        return got

    with pytest.raises(ValueError, match="bad byte"):
        asyncio.run(run())
    assert parse_threads() == []


def test_an_error_of_the_stream_reaches_the_caller() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"abc"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError, match="client went away"):
        asyncio.run(collect(body()))


def test_the_thread_runs_at_most_a_few_chunks_ahead() -> None:
    made: list[int] = []

    def many(feed: ByteFeed) -> Generator[int, None, None]:
        for i in range(50):
            made.append(i)
            yield i

    async def slow() -> list[int]:
        ahead = []
        async with ParseThread(many, lambda: b"") as items:
            async for item in items:
                await asyncio.sleep(0.002)
                ahead.append(len(made) - item)
        return ahead

    assert max(asyncio.run(slow())) <= 4  # two queued, one waiting to be queued, one taken


def test_leaving_early_stops_the_thread() -> None:
    closed = threading.Event()

    def endless(feed: ByteFeed) -> Generator[int, None, None]:
        try:
            while True:
                yield 1
        finally:
            closed.set()

    async def first() -> int:
        async with ParseThread(endless, lambda: b"") as items:
            async for item in items:
                return item
        raise AssertionError("no item")

    assert asyncio.run(first()) == 1
    assert closed.is_set()  # the parse was closed in its thread before the exit returned
    assert parse_threads() == []


def test_cancelling_the_task_stops_a_thread_that_waits_for_the_stream() -> None:
    stream_closed = threading.Event()
    first_read = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        try:
            yield b"abc"
            first_read.set()
            await asyncio.Event().wait()  # a client that sends nothing more
            yield b"never"
        finally:
            stream_closed.set()

    async def run() -> None:
        task = asyncio.create_task(collect(stalled()))
        await first_read.wait()
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert stream_closed.is_set()
    assert parse_threads() == []


# -- sources ------------------------------------------------------------------------------


def test_opened_paths_files_and_iterators(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(b"a\n1\n")
    with opened(path, allow_async=False) as (pull, name):
        assert callable(pull)
        assert (pull(), pull(), name) == (b"a\n1\n", b"", "people.csv")
    with path.open("rb") as f, opened(f, allow_async=False) as (pull, name):
        assert name == "people.csv"
    with opened(io.BytesIO(b"x"), allow_async=False) as (pull, name):
        assert name == "upload.csv"
    with opened(iter([b"a", b"b"]), allow_async=False) as (pull, name):
        assert callable(pull)
        assert [pull(), pull(), pull()] == [b"a", b"b", b""]


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (b"a,b\n", "wrap bytes in io.BytesIO"),
        (io.StringIO("a\n"), "binary file"),
        (42, "cannot read CSV from a int"),
        ("/nonexistent/x.csv", "cannot read /nonexistent/x.csv"),
    ],
)
def test_opened_refuses(source: object, words: str) -> None:
    with pytest.raises(InvalidInput, match=words), opened(source, allow_async=True):  # type: ignore[arg-type]
        pass


def test_an_async_stream_needs_the_async_side() -> None:
    async def body() -> AsyncGenerator[bytes, None]:
        yield b"a\n"

    stream = body()
    with (
        pytest.raises(InvalidInput, match="needs AsyncCsvUploads"),
        opened(stream, allow_async=False),
    ):
        pass
    with opened(stream, allow_async=True) as (pull, _):
        assert not callable(pull)
    asyncio.run(stream.aclose())
