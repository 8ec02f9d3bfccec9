"""Run one repository test on both sides: the sync class, and its async twin.

A test written against the sync API asks the ``side`` fixture for its
repository: on the "sync" side it is ``AuthAdapter(conn)``; on the "async" side
it is ``AsyncAuthAdapter(aconn)`` wrapped in Blocking, which drives every
awaitable it returns to completion on the test's own event loop. So the same
assertions check both twins, on real connections to the same database.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal, TypeVar, cast

from psycopg import AsyncConnection, Connection

from trampolin.db import async_connect, connect

R = TypeVar("R")
SideName = Literal["sync", "async"]


class Blocking:
    """An async object whose coroutines run to completion on ``loop`` when called.

    What a call returns is unwrapped the same way: a coroutine is awaited, an
    async iterator becomes a plain one, an async context manager a plain one,
    and an AsyncConnection (``repo.conn``) a Blocking one.
    """

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if callable(value) and not isinstance(value, type):
            return lambda *args, **kwargs: self.unwrap(value(*args, **kwargs))
        return self.unwrap(value)

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"

    def unwrap(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            value = self._loop.run_until_complete(_awaited(value))
        if isinstance(value, AsyncConnection):
            return Blocking(value, self._loop)
        if hasattr(value, "__aenter__"):
            return _BlockingContext(value, self._loop)
        if hasattr(value, "__anext__"):
            return _blocking_iterator(value, self._loop)
        return value


async def _awaited(value: Any) -> Any:
    return await value


class _BlockingContext:
    def __init__(self, manager: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._manager = manager
        self._loop = loop

    def __enter__(self) -> Any:
        entered = self._loop.run_until_complete(self._manager.__aenter__())
        return Blocking(entered, self._loop).unwrap(entered)

    def __exit__(self, *exc_info: Any) -> Any:
        return self._loop.run_until_complete(self._manager.__aexit__(*exc_info))


def _blocking_iterator(
    iterator: AsyncIterator[Any], loop: asyncio.AbstractEventLoop
) -> Iterator[Any]:
    while True:
        try:
            yield loop.run_until_complete(_next(iterator))
        except StopAsyncIteration:
            return


async def _next(iterator: AsyncIterator[Any]) -> Any:
    return await anext(iterator)


def async_twin(cls: type[Any]) -> type[Any]:
    """The Async twin of a sync repository class, from the same module."""
    twin = getattr(sys.modules[cls.__module__], f"Async{cls.__name__}", None)
    if twin is None:
        raise TypeError(f"{cls.__module__} has no Async{cls.__name__}")
    return cast(type[Any], twin)


class Side:
    """One side of the repositories, for one test: its connection, repositories, loop."""

    def __init__(self, name: SideName, url: str, conn: Connection[Any]) -> None:
        self.name = name
        self.url = url
        self.sync_conn = conn
        self._loop: asyncio.AbstractEventLoop | None = None
        self._aconn: AsyncConnection[Any] | None = None

    def __repr__(self) -> str:
        return self.name

    @property
    def is_async(self) -> bool:
        return self.name == "async"

    def repo(self, cls: type[R]) -> R:
        """``cls`` (a sync repository class) or its async twin, on this test's connection."""
        if not self.is_async:
            return cls(self.sync_conn)  # type: ignore[call-arg]
        return cast(R, Blocking(async_twin(cls)(self._async_conn()), self._own_loop()))

    def transaction(self) -> AbstractContextManager[Any]:
        """``conn.transaction()`` on the connection that this side's repo() uses."""
        if not self.is_async:
            return self.sync_conn.transaction()
        return _BlockingContext(self._async_conn().transaction(), self._own_loop())

    @contextmanager
    def connect(self, cls: type[R], *, autocommit: bool = True) -> Iterator[R]:
        """``cls`` or its twin on a new connection of its own, with its own loop when
        async: for threads, which must not share a connection."""
        if not self.is_async:
            with connect(self.url, autocommit=autocommit) as conn:
                yield cls(conn)  # type: ignore[call-arg]
            return
        loop = asyncio.new_event_loop()
        try:
            aconn = loop.run_until_complete(async_connect(self.url, autocommit=autocommit))
            try:
                yield cast(R, Blocking(async_twin(cls)(aconn), loop))
            except BaseException:
                # As psycopg's sync ``with`` does: roll back before closing, so the
                # server has released the locks before the test goes on (a bare
                # close lets the server abort the transaction a moment later).
                loop.run_until_complete(aconn.rollback())
                raise
            finally:
                loop.run_until_complete(aconn.close())
        finally:
            loop.close()

    def close(self) -> None:
        if self._loop is not None:
            if self._aconn is not None:
                self._loop.run_until_complete(self._aconn.close())
            self._loop.close()

    def _async_conn(self) -> AsyncConnection[Any]:
        if self._aconn is None:
            connecting = async_connect(self.url, autocommit=True)
            self._aconn = self._own_loop().run_until_complete(connecting)
        return self._aconn

    def _own_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop
