"""What trampolin.csv_uploads returns and takes: uploads, rows, sinks, its limits (pure)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

SERVER_EXPORT_COLUMNS = 100
"""Up to this width the server writes the export's CSV; wider, the client does."""

DEFAULT_ABANDONED_AFTER = 60.0
"""Seconds a 'processing' upload must be idle before ``cleanup()`` fails it by default."""

MAX_ABANDONED_AFTER = 30 * 24 * 3600.0
"""The largest ``older_than`` cleanup accepts (30 days)."""

IMPORT_START_WINDOW = 2.0
"""Seconds after its insert during which a 'processing' upload whose lock is free may
still be a live import: the importer commits the insert, then takes the lock in its
next transaction, and no transaction-scoped lock can span that instant. The checks
that fail dead uploads at once (the next import, ``csv list``, ``csv show``) leave
younger uploads alone."""

ABANDONED = "import abandoned: the importing process died before it finished"

Status = Literal["pending", "processing", "completed", "failed"]
Progress = Callable[[int], None]
Notice = Callable[[str], None]


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


def upload_from_row(row: Mapping[str, Any]) -> CsvUpload:
    """The CsvUpload of a csv_uploads row."""
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


class AsyncSink(Protocol):
    """Where export_csv writes: anything with a ``write(bytes)`` (awaited on the async side)."""

    async def write(self, data: bytes, /) -> object: ...


# -- Sync twins: generated from the Async classes above by tools/async_to_sync.py --


class Sink(Protocol):
    """Where export_csv writes: anything with a ``write(bytes)`` (awaited on the async side)."""

    def write(self, data: bytes, /) -> object: ...
