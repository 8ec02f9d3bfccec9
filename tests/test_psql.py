"""trampolin.psql: questions through one psql process, and every way it can fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from trampolin import psql as psql_module
from trampolin.psql import psql_session
from trampolin.queries import QueryFile, load_queries, load_query_file


@pytest.fixture
def q() -> QueryFile:
    return load_query_file(ROOT / "tests" / "sql" / "psql.sql")


def test_one_session_answers_one_question_after_another(db_url: str, q: QueryFile) -> None:
    with psql_session(db_url) as psql:
        assert psql is not None
        assert psql.ask(q.awkward_rows.sql) == [["1", "a,b"], ["2", 'say "hi"\nthere'], ["3", ""]]
        assert psql.ask(q.no_rows.sql) == []
        assert psql.ask(q.ends_in_a_comment.sql) == [["x"]]
        assert psql.ask(q.ends_in_a_commented_semicolon.sql) == [["y"]]
        assert psql.ask(q.no_rows.sql) == []


def test_a_scripts_query_output_is_discarded_and_questions_answered_after(
    db_url: str, q: QueryFile
) -> None:
    with psql_session(db_url) as psql:
        assert psql is not None
        assert psql.begin_script()
        assert psql.send(q.big_output.sql.encode() + b"\n")  # would fill stdout's pipe
        assert psql.commit()
        assert psql.ask(q.ends_in_a_comment.sql) == [["x"]]


def test_a_gate_answers_and_begins_or_quits(db_url: str, empty_db_url: str) -> None:
    question = load_queries("backup").restore_target.sql
    with psql_session(empty_db_url) as psql:
        assert psql is not None
        assert psql.begin_script_unless(question, ["version_num", "has_tables"], "has_tables")
        answer = psql.answer()
        assert answer is not None
        assert answer[0][0].isdigit()
        assert answer[0][1] == "f"
        assert psql.commit()
    with psql_session(db_url) as psql:
        assert psql is not None
        assert psql.begin_script_unless(question, ["version_num", "has_tables"], "has_tables")
        assert psql.answer() == [[answer[0][0], "t"]]
        assert not psql.commit()  # psql quit at the gate


def test_an_error_ends_the_session_and_every_answer_is_none(db_url: str, q: QueryFile) -> None:
    with psql_session(db_url) as psql:
        assert psql is not None
        assert psql.ask(q.fails.sql) is None
        assert psql.ask(q.no_rows.sql) is None


def test_no_answer_in_time_stops_psql(
    db_url: str, q: QueryFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psql_module, "ANSWER_SECONDS", 0.5)
    with psql_session(db_url) as psql:
        assert psql is not None
        assert psql.ask(q.never_ends.sql) is None
        assert psql.ask(q.no_rows.sql) is None


def test_an_unreachable_server_gives_none(q: QueryFile) -> None:
    with psql_session("postgresql://postgres@127.0.0.1:1/postgres") as psql:
        assert psql is not None
        assert psql.ask(q.no_rows.sql) is None


def test_no_psql_gives_no_session(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(tmp_path))
    with psql_session(db_url) as psql:
        assert psql is None


def test_a_psql_that_cannot_run_gives_no_session(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "psql"
    bogus.write_bytes(b"\x7fELF not really")
    bogus.chmod(0o755)
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(tmp_path))
    with psql_session(db_url) as psql:
        assert psql is None
