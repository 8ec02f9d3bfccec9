"""The pure parts of the backup wing: archive headers and listings, error lines, the
refusal, the transaction_timeout filter, and what a killed run leaves to sweep."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from trampolin.backup.archive import check_archive, parse_listing
from trampolin.backup.connection import sweep_password_files
from trampolin.backup.dump import sweep_partials
from trampolin.backup.restore import copy_without_timeout
from trampolin.backup.running import error_lines, failure_detail
from trampolin.backup.tables import TableRows, refusal
from trampolin.backup.tools import Tool
from trampolin.errors import BackupError


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
    pg18 = Tool("pg_restore", Path("/venv/pginstall/bin/pg_restore"), 18, "18.6")
    listing = parse_listing(text, pg18)
    assert listing.entries == 3
    assert listing.tables == ("public.users",)
    assert listing.table_data == ("public.users",)
    assert (listing.dumped_from, listing.dumped_by) == ("15.20", "18.6")
    assert listing.tool is pg18


def test_not_an_archive(tmp_path: Path) -> None:
    text = tmp_path / "notes.sql"
    text.write_text("SELECT 1;\n")
    with pytest.raises(BackupError, match="not a pg_dump custom-format archive"):
        check_archive(text)
    text.write_bytes(b"PGDMP\xff\x10\x00")
    with pytest.raises(BackupError, match="the archive header is corrupt"):
        check_archive(text)
    with pytest.raises(BackupError, match="no such file"):
        check_archive(tmp_path / "missing.dump")
    text.write_bytes(b"PGDMP\x01\x10\x00")
    assert check_archive(str(text)) == text


def test_error_lines_without_prefixes_with_detail() -> None:
    psql = (
        'NOTICE:  table "x" does not exist, skipping\n'
        "psql:<stdin>:42: ERROR:  cannot drop table public.users because other objects "
        "depend on it\n"
        "DETAIL:  view user_emails depends on table users\n"
        "HINT:  Use DROP ... CASCADE to drop the dependent objects too.\n"
    )
    assert error_lines(psql) == [
        "cannot drop table public.users because other objects depend on it",
        "DETAIL: view user_emails depends on table users",
        "HINT: Use DROP ... CASCADE to drop the dependent objects too.",
    ]
    pg_restore = "pg_restore: error: could not read from input file: end of file\n"
    detail = failure_detail(error_lines(pg_restore), 1)
    assert detail == (
        "could not read from input file: end of file (the archive is truncated or corrupt)"
    )
    assert failure_detail([], 3) == "exit code 3"
    assert failure_detail(["a", "b", "a"], 1) == "a; b"


def test_the_refusal_names_the_largest_tables_and_what_is_kept() -> None:
    present = [
        TableRows("public", "csv_rows", 12_000_000, exact=False),
        *(TableRows("public", f"t{n}", n) for n in range(6)),
        TableRows("public", "local_notes", 3),
    ]
    archived = ["public.csv_rows", *(f"public.t{n}" for n in range(6))]
    message = str(refusal("app on db:5432", present, archived))
    assert message == (
        "refusing to restore into app on db:5432, which already holds data; the restore "
        "would replace 7 table(s) with ~12,000,015 rows: public.csv_rows (~12,000,000 rows), "
        "public.t5 (5 rows), public.t4 (4 rows), public.t3 (3 rows), public.t2 (2 rows) "
        "and 2 more; 1 other table(s) would be kept as they are; pass --yes to replace them"
    )
    assert "replace no table; 1 other" in str(refusal("x", present[-1:], archived))


def test_only_the_transaction_timeout_line_is_dropped() -> None:
    script = (
        b"BEGIN;\n"
        b"SET statement_timeout = 0;\n"
        b"SET transaction_timeout = 0;\n"
        b"SET lock_timeout = 0;\n"
        b"COPY t FROM stdin;\nSET transaction_timeout = 0;\n\\.\n"
    )
    sink = io.BytesIO()
    ticks: list[int] = []
    copy_without_timeout(io.BytesIO(script), sink, lambda: ticks.append(1))
    assert sink.getvalue() == (
        b"BEGIN;\nSET statement_timeout = 0;\nSET lock_timeout = 0;\n"
        b"COPY t FROM stdin;\nSET transaction_timeout = 0;\n\\.\n"
    )
    assert ticks == [1]
    short = io.BytesIO()
    copy_without_timeout(io.BytesIO(b"BEGIN;\nCOMMIT;\n"), short)
    assert short.getvalue() == b"BEGIN;\nCOMMIT;\n"


def test_partials_of_dead_processes_are_swept(tmp_path: Path) -> None:
    live = subprocess.Popen(["sleep", "60"])
    ended = subprocess.Popen(["true"])
    ended.wait()
    names = [
        f".db.dump.{ended.pid}.partial",  # dead: swept
        f".db.dump.{os.getpid()}.partial",  # this process's, before it made one: swept
        f".db.dump.{live.pid}.partial",  # a dump that runs: kept
        f".other.dump.{ended.pid}.partial",  # another file's: kept
        ".db.dump.x.partial",  # not ours: kept
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"PGDMP")
    try:
        removed = sweep_partials(tmp_path / "db.dump")
    finally:
        live.kill()
        live.wait()
    assert sorted(path.name for path in removed) == sorted(names[:2])
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(names[2:])


def test_password_files_of_earlier_releases_are_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    ours, other = tmp_path / "trampolin-abc.pgpass", tmp_path / "other.pgpass"
    for path in (ours, other):
        path.write_text("*:*:*:*:secret\n")
    assert sweep_password_files() == [ours]
    assert sorted(tmp_path.iterdir()) == [other]
