"""trampolin.psql: questions through one psql process, and every way it can fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from trampolin import pgtools, queries
from trampolin import psql as psql_module
from trampolin.psql import psql_session
from trampolin.queries import QueryFile, sql_root


@pytest.fixture
def q() -> QueryFile:
    return queries.load_file(ROOT / "tests" / "sql" / "psql.sql")


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
        assert psql.start_script()
        assert psql.send(q.big_output.sql.encode() + b"\n")  # would fill stdout's pipe
        assert psql.confirm()
        assert psql.ask(q.ends_in_a_comment.sql) == [["x"]]


def test_a_last_question_behind_a_script_is_answered_and_ends_the_session(
    db_url: str, q: QueryFile
) -> None:
    with psql_session(db_url) as psql:
        assert psql is not None
        assert psql.start_script()
        assert psql.send(q.big_output.sql.encode() + b"\n")
        assert psql.confirm(then=q.awkward_rows.sql)
        assert psql.answer() == [["1", "a,b"], ["2", 'say "hi"\nthere'], ["3", ""]]
        assert psql.ask(q.no_rows.sql) is None  # nothing is sent after the last question


def test_a_failing_last_question_does_not_make_the_script_fail(db_url: str, q: QueryFile) -> None:
    with psql_session(db_url) as psql:
        assert psql is not None
        assert psql.start_script()
        assert psql.confirm(then=q.fails.sql)  # the script ran to its end
        assert psql.answer() is None
    assert any("ERROR" in line for line in psql.errors)  # read to the end once closed


def test_a_failing_script_is_not_confirmed_and_its_last_question_not_asked(
    db_url: str, q: QueryFile
) -> None:
    with psql_session(db_url) as psql:
        assert psql is not None
        assert psql.start_script()
        assert psql.send(q.fails.sql.encode() + b"\n")
        assert not psql.confirm(then=q.no_rows.sql)
        assert psql.answer() is None


GATE = (sql_root() / "psql" / "restore_gate.sql").read_text()
QUESTION = queries.load("backup").restore_target.sql
COLUMNS = ["version_num", "has_tables"]


@pytest.mark.parametrize(
    ("target", "tool", "went_on"),
    [("empty", 0, "t"), ("empty", -1, "f"), ("migrated", 0, "f")],
)
def test_the_gate_lets_psql_go_on_only_into_an_empty_target_with_a_fitting_tool(
    db_url: str, empty_db_url: str, target: str, tool: int, went_on: str
) -> None:
    """``tool``: the pg_restore's major version, relative to the server's."""
    url = empty_db_url if target == "empty" else db_url
    tool_version = str((pgtools.server_major(url) + tool) * 10000 + 3)
    with psql_session(url) as psql:
        assert psql is not None
        assert psql.start_script_if(QUESTION, COLUMNS, GATE, {"tool_version_num": tool_version})
        answer = psql.answer()
        assert answer is not None
        version, has_tables, go = answer[0]
        assert version.isdigit()
        assert has_tables == ("f" if target == "empty" else "t")
        assert go == went_on
        assert psql.confirm() is (went_on == "t")  # psql quit at the gate otherwise


def test_the_gate_takes_psqls_own_version_for_the_pg_restore_beside_it(
    empty_db_url: str,
) -> None:
    """What restore passes: :VERSION_NUM, put in by psql itself."""
    with psql_session(empty_db_url) as psql:
        assert psql is not None
        variables = {"tool_version_num": ":VERSION_NUM"}
        assert psql.start_script_if(QUESTION, COLUMNS, GATE, variables)
        answer = psql.answer()
        assert answer is not None
        fits = pgtools.probe("psql", psql.program)
        assert fits is not None
        server = pgtools.server_major(empty_db_url)
        expected = fits.major >= server and not (fits.major >= 17 > server)
        assert answer[0][2] == ("t" if expected else "f")


def test_the_gate_stops_a_pg_restore_17_before_an_older_server(empty_db_url: str) -> None:
    """Its transaction_timeout line needs the filtered path."""
    if pgtools.server_major(empty_db_url) >= 17:
        pytest.skip("the server is 17 or newer")
    with psql_session(empty_db_url) as psql:
        assert psql is not None
        assert psql.start_script_if(QUESTION, COLUMNS, GATE, {"tool_version_num": "180001"})
        answer = psql.answer()
        assert answer is not None
        assert answer[0][2] == "f"


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
