"""Searches and URL analyses: start a search, let workers claim and settle analyses, history.

``Analyses(conn)`` (and ``AsyncAnalyses(aconn)``, awaited). ``start_search``
normalizes the URLs (trampolin.analysis_urls), reserves one unit of allowance
per analysis it (re)starts, all or nothing, and creates the search, in one
transaction. Workers ``claim`` pending analyses (FOR UPDATE SKIP LOCKED) and
``complete`` or ``fail`` them; a unit comes back when an analysis fails or
finds no reach (the app charged only URLs with reach). A claim older than
``STALE_AFTER`` counts as abandoned: the next ``claim`` takes the analysis
again. docs/usage.md describes the life cycle.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg import errors as pgerrors
from psycopg.types.json import Jsonb

from trampolin import queries
from trampolin.analysis_urls import normalize_urls
from trampolin.db import atomic
from trampolin.errors import InvalidInput, NotFound
from trampolin.usage import AsyncUsage, Usage
from trampolin.values import integer, text, user_key
from trampolin.values import limit as page_size

STALE_AFTER = timedelta(minutes=15)
MAX_STALE = timedelta(days=365)  # far below what would take now() - stale_after out of range
MAX_CLAIM = 1_000
MAX_HISTORY = 500
MAX_REACH = 2**63 - 1
MAX_ERROR_LENGTH = 2_000
SEARCH_REASON = "search"
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

_q = queries.load("analyses")


@dataclass(frozen=True)
class UrlAnalysis:
    id: uuid.UUID
    user_id: uuid.UUID
    url: str
    status: str
    results: dict[str, Any] | None
    reach: int | None
    error: str | None
    attempts: int
    queued_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SearchItem:
    """One URL of a search: its analysis, and the outcome of the run the search waited for."""

    analysis_id: uuid.UUID
    url: str
    status: str
    reach: int | None


@dataclass(frozen=True)
class Search:
    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    url_count: int
    pending_count: int
    failed_count: int
    total_reach: int
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    analyses: tuple[SearchItem, ...]


class AsyncAnalyses:
    """Searches and URL analyses on one psycopg connection."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn

    async def start_search(self, user_id: uuid.UUID | str, urls: Iterable[str]) -> Search:
        """A new search of ``urls`` (normalized, de-duplicated), its analyses queued.

        Reserves one unit per analysis it queues (a running analysis of the
        same URL is joined at no charge), all or nothing: LimitExceeded and
        nothing written when too few remain. InvalidInput for a bad URL.
        """
        key = user_key(user_id)
        if key is None:
            raise NotFound(f"no user with id {user_id!r}")
        wanted = normalize_urls(urls)
        usage = AsyncUsage(self.conn)
        async with atomic(self.conn):
            try:
                upserted = await _q.upsert_analyses.many(self.conn, user_id=key, urls=wanted)
            except pgerrors.ForeignKeyViolation:
                raise NotFound(f"no user with id {key}") from None
            queued = [row["id"] for row in upserted]
            row = await _q.create_search.one(self.conn, user_id=key, url_count=len(wanted))
            assert row is not None
            search_id = row["id"]
            period_start = None
            if queued:
                charge = await usage.charge(
                    key, len(queued), reason=SEARCH_REASON, search_id=search_id
                )
                period_start = charge.period_start
            await _q.add_search_analyses.exec(
                self.conn,
                search_id=search_id,
                user_id=key,
                urls=wanted,
                charged=queued,
                period_start=period_start,
            )
            found = await self.search(search_id, key)
        assert found is not None
        return found

    async def search(self, search_id: uuid.UUID | str, user_id: uuid.UUID | str) -> Search | None:
        """The search if it belongs to that user; None otherwise (unknown or not theirs)."""
        key, owner = user_key(search_id), user_key(user_id)
        if key is None or owner is None:
            return None
        row = await _q.search.one(self.conn, search_id=key, user_id=owner)
        return None if row is None else _search(row)

    async def claim(
        self, limit: int = 10, *, stale_after: timedelta = STALE_AFTER
    ) -> list[UrlAnalysis]:
        """Up to ``limit`` analyses for this worker, now 'processing', oldest first."""
        count = integer("limit", limit, minimum=1, maximum=MAX_CLAIM)
        if not isinstance(stale_after, timedelta) or not timedelta(0) < stale_after <= MAX_STALE:
            raise InvalidInput(f"stale_after must be a timedelta above 0 and up to {MAX_STALE}")
        async with atomic(self.conn):
            rows = await _q.claim.many(self.conn, limit=count, stale_after=stale_after)
        return sorted((_analysis(row) for row in rows), key=lambda a: (a.queued_at, str(a.id)))

    async def complete(
        self, analysis_id: uuid.UUID | str, *, results: Mapping[str, Any], reach: int
    ) -> UrlAnalysis | None:
        """Store a processing analysis's results; reach 0 gives its unit back.

        None if no analysis with that id is processing (unknown, or settled
        already by another worker after this one's claim went stale).
        """
        params = {
            "status": "completed",
            "results": _results(results),
            "reach": integer("reach", reach, maximum=MAX_REACH),
            "error": None,
        }
        return await self._finish(analysis_id, params, give_back="no reach" if reach == 0 else None)

    async def fail(self, analysis_id: uuid.UUID | str, error: str) -> UrlAnalysis | None:
        """Mark a processing analysis failed and give its unit back; None as for complete."""
        message = text("error", error).strip()[:MAX_ERROR_LENGTH] or "failed"
        params = {"status": "failed", "results": None, "reach": None, "error": message}
        return await self._finish(analysis_id, params, give_back="analysis failed")

    async def _finish(
        self, analysis_id: uuid.UUID | str, params: dict[str, Any], *, give_back: str | None
    ) -> UrlAnalysis | None:
        key = user_key(analysis_id)
        if key is None:
            return None
        async with atomic(self.conn):
            locked = await _q.lock_processing.one(self.conn, analysis_id=key)
            if locked is None:
                return None
            await _q.lock_open_searches.exec(self.conn, analysis_id=key)
            row = await _q.finish.one(self.conn, analysis_id=key, **params)
            assert row is not None
            if give_back is not None and locked["charged_period_start"] is not None:
                await AsyncUsage(self.conn).give_back(
                    locked["user_id"],
                    1,
                    reason=give_back,
                    analysis_id=key,
                    period_start=locked["charged_period_start"],
                )
        return _analysis(row)

    async def history(
        self,
        user_id: uuid.UUID | str,
        *,
        before: uuid.UUID | str | None = None,
        limit: int = 50,
    ) -> list[Search]:
        """The user's searches, newest first; ``before``: the last search of the previous page."""
        count = page_size(limit, MAX_HISTORY)
        key = user_key(user_id)
        cursor = None if before is None else user_key(before)
        if key is None or (before is not None and cursor is None):
            return []
        rows = await _q.history.many(self.conn, user_id=key, before=cursor, limit=count)
        return [_search(row) for row in rows]

    async def get(
        self, analysis_id: uuid.UUID | str, user_id: uuid.UUID | str
    ) -> UrlAnalysis | None:
        """The analysis if it belongs to that user; None otherwise (unknown or not theirs)."""
        key, owner = user_key(analysis_id), user_key(user_id)
        if key is None or owner is None:
            return None
        row = await _q.get.one(self.conn, analysis_id=key, user_id=owner)
        return None if row is None else _analysis(row)


def _analysis(row: Mapping[str, Any]) -> UrlAnalysis:
    return UrlAnalysis(**row)


def _search(row: Mapping[str, Any]) -> Search:
    items = tuple(
        SearchItem(uuid.UUID(item["analysis_id"]), item["url"], item["status"], item["reach"])
        for item in row["analyses"]
    )
    return Search(**{**row, "analyses": items})


def _results(value: object) -> Jsonb:
    """The worker's results as jsonb; InvalidInput if they are not a JSON object jsonb can hold."""
    if not isinstance(value, Mapping):
        raise InvalidInput(f"results must be a JSON object (a mapping), not {type(value).__name__}")
    try:
        dumped = json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"results are not plain JSON data: {exc}") from None
    if _JSON_NUL.search(dumped):
        raise InvalidInput("results contain a NUL character, which jsonb cannot hold")
    return Jsonb(dict(value), dumps=lambda _obj: dumped)


# -- Sync twins: generated from the Async classes above by tools/async_to_sync.py --


class Analyses:
    """Searches and URL analyses on one psycopg connection."""

    def __init__(self, conn: Connection[Any]) -> None:
        self.conn = conn

    def start_search(self, user_id: uuid.UUID | str, urls: Iterable[str]) -> Search:
        """A new search of ``urls`` (normalized, de-duplicated), its analyses queued.

        Reserves one unit per analysis it queues (a running analysis of the
        same URL is joined at no charge), all or nothing: LimitExceeded and
        nothing written when too few remain. InvalidInput for a bad URL.
        """
        key = user_key(user_id)
        if key is None:
            raise NotFound(f"no user with id {user_id!r}")
        wanted = normalize_urls(urls)
        usage = Usage(self.conn)
        with atomic(self.conn):
            try:
                upserted = _q.upsert_analyses.many(self.conn, user_id=key, urls=wanted)
            except pgerrors.ForeignKeyViolation:
                raise NotFound(f"no user with id {key}") from None
            queued = [row["id"] for row in upserted]
            row = _q.create_search.one(self.conn, user_id=key, url_count=len(wanted))
            assert row is not None
            search_id = row["id"]
            period_start = None
            if queued:
                charge = usage.charge(key, len(queued), reason=SEARCH_REASON, search_id=search_id)
                period_start = charge.period_start
            _q.add_search_analyses.exec(
                self.conn,
                search_id=search_id,
                user_id=key,
                urls=wanted,
                charged=queued,
                period_start=period_start,
            )
            found = self.search(search_id, key)
        assert found is not None
        return found

    def search(self, search_id: uuid.UUID | str, user_id: uuid.UUID | str) -> Search | None:
        """The search if it belongs to that user; None otherwise (unknown or not theirs)."""
        key, owner = user_key(search_id), user_key(user_id)
        if key is None or owner is None:
            return None
        row = _q.search.one(self.conn, search_id=key, user_id=owner)
        return None if row is None else _search(row)

    def claim(self, limit: int = 10, *, stale_after: timedelta = STALE_AFTER) -> list[UrlAnalysis]:
        """Up to ``limit`` analyses for this worker, now 'processing', oldest first."""
        count = integer("limit", limit, minimum=1, maximum=MAX_CLAIM)
        if not isinstance(stale_after, timedelta) or not timedelta(0) < stale_after <= MAX_STALE:
            raise InvalidInput(f"stale_after must be a timedelta above 0 and up to {MAX_STALE}")
        with atomic(self.conn):
            rows = _q.claim.many(self.conn, limit=count, stale_after=stale_after)
        return sorted((_analysis(row) for row in rows), key=lambda a: (a.queued_at, str(a.id)))

    def complete(
        self, analysis_id: uuid.UUID | str, *, results: Mapping[str, Any], reach: int
    ) -> UrlAnalysis | None:
        """Store a processing analysis's results; reach 0 gives its unit back.

        None if no analysis with that id is processing (unknown, or settled
        already by another worker after this one's claim went stale).
        """
        params = {
            "status": "completed",
            "results": _results(results),
            "reach": integer("reach", reach, maximum=MAX_REACH),
            "error": None,
        }
        return self._finish(analysis_id, params, give_back="no reach" if reach == 0 else None)

    def fail(self, analysis_id: uuid.UUID | str, error: str) -> UrlAnalysis | None:
        """Mark a processing analysis failed and give its unit back; None as for complete."""
        message = text("error", error).strip()[:MAX_ERROR_LENGTH] or "failed"
        params = {"status": "failed", "results": None, "reach": None, "error": message}
        return self._finish(analysis_id, params, give_back="analysis failed")

    def _finish(
        self, analysis_id: uuid.UUID | str, params: dict[str, Any], *, give_back: str | None
    ) -> UrlAnalysis | None:
        key = user_key(analysis_id)
        if key is None:
            return None
        with atomic(self.conn):
            locked = _q.lock_processing.one(self.conn, analysis_id=key)
            if locked is None:
                return None
            _q.lock_open_searches.exec(self.conn, analysis_id=key)
            row = _q.finish.one(self.conn, analysis_id=key, **params)
            assert row is not None
            if give_back is not None and locked["charged_period_start"] is not None:
                Usage(self.conn).give_back(
                    locked["user_id"],
                    1,
                    reason=give_back,
                    analysis_id=key,
                    period_start=locked["charged_period_start"],
                )
        return _analysis(row)

    def history(
        self,
        user_id: uuid.UUID | str,
        *,
        before: uuid.UUID | str | None = None,
        limit: int = 50,
    ) -> list[Search]:
        """The user's searches, newest first; ``before``: the last search of the previous page."""
        count = page_size(limit, MAX_HISTORY)
        key = user_key(user_id)
        cursor = None if before is None else user_key(before)
        if key is None or (before is not None and cursor is None):
            return []
        rows = _q.history.many(self.conn, user_id=key, before=cursor, limit=count)
        return [_search(row) for row in rows]

    def get(self, analysis_id: uuid.UUID | str, user_id: uuid.UUID | str) -> UrlAnalysis | None:
        """The analysis if it belongs to that user; None otherwise (unknown or not theirs)."""
        key, owner = user_key(analysis_id), user_key(user_id)
        if key is None or owner is None:
            return None
        row = _q.get.one(self.conn, analysis_id=key, user_id=owner)
        return None if row is None else _analysis(row)
