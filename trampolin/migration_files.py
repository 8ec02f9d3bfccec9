"""The migration files of sql/migrations: read, split, created, and compared with
a database's records of them. No database access here (and no psycopg import),
so that `migrate status` of a restore and `migrate new` stay cheap.

The files are listed and their leading comments (``-- transactional:``,
``-- depends:``, the description) read by yoyo's rules, without importing
yoyo (~30 ms of CPU, which a restore's status would take from the server's
index builds); tests hold both readings equal. yoyo itself orders files that
declare ``-- depends:`` and splits a file's statements when it runs.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

from trampolin.errors import InvalidInput, MigrationError
from trampolin.queries import sql_root

State = Literal["applied", "pending", "edited", "missing"]


def migrations_dir() -> Path:
    """sql/migrations, or $TRAMPOLIN_MIGRATIONS_DIR when set."""
    configured = os.environ.get("TRAMPOLIN_MIGRATIONS_DIR")
    return Path(configured) if configured else sql_root() / "migrations"


class Statement(NamedTuple):
    sql: str
    line: int


class MigrationFile(NamedTuple):
    """One migration file as yoyo reads it, plus its checksum.

    Only the leading comments are read up front; the statements are split
    (with yoyo's sqlparse-based reader) when they are needed, so that status
    and an up-to-date migrate stay cheap.
    """

    id: str
    path: Path
    description: str
    transactional: bool
    depends: frozenset[str]
    checksum: str

    @property
    def yoyo_hash(self) -> str:
        return hashlib.sha256(self.id.encode("utf-8")).hexdigest()

    @property
    def rollback_path(self) -> Path:
        return self.path.with_name(f"{self.id}.rollback.sql")

    def script(self) -> Script:
        """The forward statements, split and checked."""
        return _script(self.path, self.transactional)

    def rollback_script(self) -> Script | None:
        """The rollback file's statements, or None when there is no rollback file.

        A rollback file may carry its own ``-- transactional:`` line; without
        one it runs as the forward file does.
        """
        if not self.rollback_path.exists():
            return None
        directives = _directives(self.rollback_path, self.rollback_path.read_bytes())[0]
        transactional = directives.get("transactional")
        return _script(
            self.rollback_path,
            self.transactional
            if transactional is None
            else _boolean(transactional, self.rollback_path),
        )


class Script(NamedTuple):
    """Statements of one file, to run in one transaction or (one statement) without."""

    path: Path
    transactional: bool
    statements: tuple[Statement, ...]


class MigrationStatus(NamedTuple):
    id: str
    description: str
    state: State
    applied_at: datetime | None
    path: Path | None


def read_migration_files(directory: Path | None = None) -> list[MigrationFile]:
    """The migration files of ``directory`` in apply order: by file name, or yoyo's
    order when a file declares ``-- depends:``."""
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"{directory}: no migrations directory")
    files = [_read_file(_migration_id(path), path) for path in _migration_paths(directory)]
    if any(migration.depends for migration in files):
        from yoyo.migrations import read_migrations, topological_sort

        found = read_migrations(glob.escape(str(directory)))  # yoyo globs its sources
        by_id = {migration.id: migration for migration in files}
        if {migration.id for migration in found} != set(by_id):
            raise MigrationError(f"{directory}: yoyo lists other migrations than trampolin")
        return [by_id[migration.id] for migration in topological_sort(found)]
    return files


# yoyo's rules (yoyo.migrations.read_migrations): a directory's .sql and .py
# files but its own temporary files, in name order; rollback files and
# post-apply hooks are not migrations.
_YOYO_TEMPORARY = "_tmp_yoyonew"


def _migration_paths(directory: Path) -> list[Path]:
    paths = []
    for path in sorted(directory.iterdir(), key=str):
        if path.suffix not in (".sql", ".py") or path.name.startswith(_YOYO_TEMPORARY):
            continue
        if not path.is_file() or path.name.endswith(".rollback.sql"):
            continue
        if _migration_id(path).startswith("post-apply"):
            continue
        if path.suffix != ".sql":
            raise MigrationError(f"{path}: only .sql migrations are supported")
        paths.append(path)
    return paths


def _migration_id(path: Path) -> str:
    """The file name without its extension, as yoyo has it (``..sql`` stays whole)."""
    return os.path.splitext(path.name)[0]


def _read_file(migration_id: str, path: Path) -> MigrationFile:
    raw = path.read_bytes()
    directives, leading_comment = _directives(path, raw)
    paragraph = leading_comment.strip().split("\n\n", 1)[0]
    description = " ".join(line.strip() for line in paragraph.splitlines())
    return MigrationFile(
        id=migration_id,
        path=path,
        description=description.strip(),
        transactional=_boolean(directives.get("transactional", "true"), path),
        depends=frozenset(directives.get("depends", "").split()),
        checksum=hashlib.sha256(raw).hexdigest(),
    )


# yoyo's leading-comment grammar (yoyo.migrations.parse_metadata_from_sql_comments).
_DIRECTIVE = re.compile(r"^\s*--\s*(transactional|depends)\s*:\s*(.*)$")
_COMMENT_OR_EMPTY = re.compile(r"^(\s*|\s*--.*)$")


def _directives(path: Path, raw: bytes) -> tuple[dict[str, str], str]:
    """The ``-- name: value`` directives and the leading comment of a file, as yoyo
    reads them."""
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationError(f"{path}: not UTF-8 ({exc.reason})") from None
    ending = re.search(r"\n|\r\n|\r", source + "\n")
    assert ending is not None
    directives: dict[str, str] = {}
    comment = []
    for line in source.split(ending[0]):
        if directive := _DIRECTIVE.match(line):
            name, value = directive.groups()
            directives[name] = f"{directives[name]} {value}" if name in directives else value
        elif _COMMENT_OR_EMPTY.match(line):
            comment.append(line.strip().lstrip("-").strip())
        else:
            break
    return directives, textwrap.dedent(ending[0].join(comment))


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


def _script(path: Path, transactional: bool) -> Script:
    statements = _split(path)
    if not transactional and len(statements) != 1:
        raise MigrationError(
            f"{path}: a '-- transactional: false' file must hold exactly one statement "
            f"(it has {len(statements)}); split it into one file per statement"
        )
    if transactional:
        for statement in statements:
            if _TRANSACTION_CONTROL.match(_without_leading_comments(statement.sql)):
                raise MigrationError(
                    f"{path}:{statement.line}: no BEGIN, COMMIT or ROLLBACK in a migration: "
                    "trampolin runs each file in one transaction with the record of it"
                )
    return Script(path, transactional, statements)


def _without_leading_comments(sql: str) -> str:
    return re.sub(r"^(\s*(--[^\n]*(\n|$)|/\*.*?\*/))*\s*", "", sql, flags=re.DOTALL)


def _split(path: Path) -> tuple[Statement, ...]:
    from yoyo.migrations import read_sql_migration

    try:
        _, _, statements = read_sql_migration(str(path))
        return _locate(statements, path.read_text("utf-8"))
    except UnicodeDecodeError as exc:
        raise MigrationError(f"{path}: not UTF-8 ({exc.reason})") from None


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


def _utc(moment: datetime | None) -> datetime | None:
    """The same instant in UTC, whatever the session's TimeZone was."""
    return moment.astimezone(UTC) if moment is not None else None


def compare(
    files: list[MigrationFile], applied: dict[str, dict[str, Any]]
) -> list[MigrationStatus]:
    """Every migration: applied, pending, edited (checksum differs) or missing (no file).

    ``applied``: the database's records by migration id, each with its
    ``applied_at`` and ``checksum`` (None for one applied by plain yoyo).
    """
    statuses = []
    known = set()
    for migration in files:
        known.add(migration.id)
        record = applied.get(migration.id)
        state: State = "pending"
        if record is not None:
            edited = record["checksum"] not in (None, migration.checksum)
            state = "edited" if edited else "applied"
        statuses.append(
            MigrationStatus(
                migration.id,
                migration.description,
                state,
                _utc(record["applied_at"]) if record else None,
                migration.path,
            )
        )
    for migration_id, record in applied.items():
        if migration_id not in known:
            statuses.append(
                MigrationStatus(migration_id, "", "missing", _utc(record["applied_at"]), None)
            )
    return statuses


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
    forward = directory / f"{migration_id}.sql"
    rollback = directory / f"{migration_id}.rollback.sql"
    if any(directory.glob(f"*_{name}.sql")):
        raise InvalidInput(f"a migration named {name!r} exists already in {directory}")
    forward.write_text(_TEMPLATE.format(title=name.replace("_", " ").capitalize()), "utf-8")
    rollback.write_text(_ROLLBACK_TEMPLATE.format(id=migration_id), "utf-8")
    return forward, rollback
