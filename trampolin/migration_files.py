"""The migration files of sql/migrations/ as yoyo lists, orders and splits them; their
checksums, their status against a database's records, and new ones.

No database access here: trampolin.migrations applies and rolls back.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from yoyo.migrations import (
    get_migration_hash,
    parse_metadata_from_sql_comments,
    read_migrations,
    read_sql_migration,
    topological_sort,
)

from trampolin.errors import InvalidInput, MigrationError
from trampolin.queries import sql_root

State = Literal["applied", "pending", "edited", "missing"]


def migrations_dir() -> Path:
    """sql/migrations, or $TRAMPOLIN_MIGRATIONS_DIR when set."""
    configured = os.environ.get("TRAMPOLIN_MIGRATIONS_DIR")
    return Path(configured) if configured else sql_root() / "migrations"


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int  # where it starts in its file, for error messages


@dataclass(frozen=True)
class Script:
    """The statements of one file, to run in one transaction or (one statement) without."""

    path: Path
    transactional: bool
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class MigrationFile:
    """One migration file: its leading comments as yoyo reads them, and its checksum.
    Its statements are split (by yoyo) only when it is applied or rolled back."""

    id: str
    path: Path
    description: str
    transactional: bool
    depends: frozenset[str]
    checksum: str

    @property
    def yoyo_hash(self) -> str:
        return str(get_migration_hash(self.id))

    @property
    def rollback_path(self) -> Path:
        return self.path.with_name(f"{self.id}.rollback.sql")

    def script(self) -> Script:
        """The forward statements, split and checked."""
        return _script(self.path, self.transactional)

    def rollback_script(self) -> Script | None:
        """The rollback file's statements, or None when there is no rollback file. A
        rollback file may carry its own ``-- transactional:``; else it runs as the
        forward file does."""
        if not self.rollback_path.exists():
            return None
        return _script(self.rollback_path, self.transactional)


@dataclass(frozen=True)
class MigrationStatus:
    id: str
    description: str
    state: State
    applied_at: datetime | None
    path: Path | None


def read_migration_files(directory: Path | None = None) -> list[MigrationFile]:
    """The migration files of ``directory`` in apply order, as yoyo lists and orders
    them: by file name, or by their ``-- depends:``."""
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"{directory}: no migrations directory")
    found = read_migrations(glob.escape(str(directory)))  # yoyo globs its sources
    for migration in found:
        if not migration.is_raw_sql():
            raise MigrationError(f"{migration.path}: only .sql migrations are supported")
    files = {migration.id: _read_file(migration.id, Path(migration.path)) for migration in found}
    if any(migration.depends for migration in files.values()):
        return [files[migration.id] for migration in topological_sort(found)]
    return list(files.values())


def _read_file(migration_id: str, path: Path) -> MigrationFile:
    raw = path.read_bytes()
    directives, leading_comment, _ = parse_metadata_from_sql_comments(_text(path, raw))
    paragraph = leading_comment.strip().split("\n\n", 1)[0]
    return MigrationFile(
        id=migration_id,
        path=path,
        description=" ".join(line.strip() for line in paragraph.splitlines()).strip(),
        transactional=_boolean(directives.get("transactional", "true"), path),
        depends=frozenset(directives.get("depends", "").split()),
        checksum=hashlib.sha256(raw).hexdigest(),
    )


def _text(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationError(f"{path}: not UTF-8 ({exc.reason})") from None


def _boolean(value: str, path: Path) -> bool:
    normalized = value.strip().lower()
    if normalized not in ("true", "false"):
        raise MigrationError(f"{path}: '-- transactional:' must be true or false")
    return normalized == "true"


# Statements that would end the transaction a migration runs in, and with it
# the guarantee that the migration and its record commit together.
_TRANSACTION_CONTROL = re.compile(
    r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ABORT|ROLLBACK(?!\s+TO\b)|PREPARE\s+TRANSACTION)\b",
    re.IGNORECASE,
)
_LEADING_COMMENTS = re.compile(r"^(\s*(--[^\n]*(\n|$)|/\*.*?\*/))*\s*", re.DOTALL)


def _script(path: Path, transactional: bool) -> Script:
    """The statements of ``path`` split by yoyo, with the line each starts on; its own
    ``-- transactional:`` overrides ``transactional``."""
    source = _text(path, path.read_bytes())
    directives, _, statements = read_sql_migration(str(path))
    if "transactional" in directives:
        transactional = _boolean(directives["transactional"], path)
    located = _locate(statements, source)
    if not transactional and len(located) != 1:
        raise MigrationError(
            f"{path}: a '-- transactional: false' file must hold exactly one statement "
            f"(it has {len(located)}); split it into one file per statement"
        )
    for statement in located if transactional else ():
        if _TRANSACTION_CONTROL.match(_LEADING_COMMENTS.sub("", statement.sql, count=1)):
            raise MigrationError(
                f"{path}:{statement.line}: no BEGIN, COMMIT or ROLLBACK in a migration: "
                "trampolin runs each file in one transaction with the record of it"
            )
    return Script(path, transactional, located)


def _locate(statements: list[str], source: str) -> tuple[Statement, ...]:
    """Pair each statement with the line of the file it starts on."""
    located = []
    offset = 0
    for text in statements:
        body = text.strip()
        found = source.find(body, offset)
        start = found if found >= 0 else offset
        located.append(Statement(body, source.count("\n", 0, start) + 1))
        offset = start + len(body)
    return tuple(located)


def compare(
    files: list[MigrationFile], applied: dict[str, dict[str, Any]]
) -> list[MigrationStatus]:
    """Every migration: applied, pending, edited (checksum differs) or missing (no file).

    ``applied``: the database's records by migration id, each with its
    ``applied_at`` and ``checksum`` (None for one applied by plain yoyo).
    """
    statuses = []
    for migration in files:
        record = applied.get(migration.id)
        state: State = "pending"
        if record is not None:
            edited = record["checksum"] not in (None, migration.checksum)
            state = "edited" if edited else "applied"
        when = _utc(record["applied_at"]) if record else None
        statuses.append(
            MigrationStatus(migration.id, migration.description, state, when, migration.path)
        )
    known = {migration.id for migration in files}
    for migration_id, record in applied.items():
        if migration_id not in known:
            when = _utc(record["applied_at"])
            statuses.append(MigrationStatus(migration_id, "", "missing", when, None))
    return statuses


def _utc(moment: datetime | None) -> datetime | None:
    """The same instant in UTC, whatever the session's TimeZone was."""
    return moment.astimezone(UTC) if moment is not None else None


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_TEMPLATE = """\
-- {title}.
--
-- Runs in one transaction with the record that it was applied, under
-- lock_timeout; no BEGIN or COMMIT here. For CREATE INDEX CONCURRENTLY, put
-- "-- transactional: false" on the first line and keep exactly one statement
-- (with IF NOT EXISTS; if it fails part-way, migrate names the INVALID index
-- to drop before it runs again).

"""
_ROLLBACK_TEMPLATE = """\
-- Undo {id}: statements that reverse it, run in one transaction.

"""


def new_migration(name: str, directory: Path | None = None) -> tuple[Path, Path]:
    """Write the next migration file and its rollback file; returns both paths."""
    directory = directory or migrations_dir()
    if not _NAME.match(name):
        raise InvalidInput(
            f"migration name {name!r}: use lower snake_case, a letter first, at most 60 "
            "characters (e.g. add_invoices_table)"
        )
    if "site-packages" in directory.parts:
        raise MigrationError(
            f"{directory} is inside an installed package; run `migrate new` in the source checkout"
        )
    numbers = [
        int(match.group(1))
        for path in directory.glob("*.sql")
        if (match := re.match(r"^(\d+)_", path.name))
    ]
    migration_id = f"{max(numbers, default=0) + 1:04d}_{name}"
    if any(re.fullmatch(rf"\d+_{re.escape(name)}\.sql", path.name) for path in directory.iterdir()):
        raise InvalidInput(f"a migration named {name!r} exists already in {directory}")
    forward = directory / f"{migration_id}.sql"
    rollback = directory / f"{migration_id}.rollback.sql"
    forward.write_text(_TEMPLATE.format(title=name.replace("_", " ").capitalize()), "utf-8")
    rollback.write_text(_ROLLBACK_TEMPLATE.format(id=migration_id), "utf-8")
    return forward, rollback
