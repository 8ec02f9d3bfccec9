"""trampolin.psql: questions through one psql process, and every way it can fail."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from trampolin.psql import psql_session
from trampolin.queries import QueryFile, load_query_file


@pytest.fixture
def q() -> QueryFile:
    return load_query_file(ROOT / "tests" / "sql" / "psql.sql")


def test_one_session_answers_one_question_after_another(db_url: str, q: QueryFile) -> None:
    with psql_session(db_url) as psql:
        assert psql is not None
        assert psql.ask(q.awkward_rows.sql) == [["1", "a,b"], ["2", 'say "hi"\nthere'], ["3", ""]]
        assert psql.ask(q.no_rows.sql) == []
        assert psql.ask(q.ends_in_a_comment.sql) == [["x"]]


def test_an_error_ends_the_session_and_every_answer_is_none(db_url: str, q: QueryFile) -> None:
    with psql_session(db_url) as psql:
        assert psql is not None
        assert psql.ask(q.fails.sql) is None
        assert psql.ask(q.no_rows.sql) is None


def test_an_unreachable_server_gives_none_at_once(q: QueryFile) -> None:
    started = time.monotonic()
    with psql_session("postgresql://postgres@127.0.0.1:1/postgres") as psql:
        assert psql is not None
        assert psql.ask(q.no_rows.sql) is None
    assert time.monotonic() - started < 10


def test_no_psql_gives_no_session(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAMPOLIN_PG_BIN", str(tmp_path))
    with psql_session(db_url) as psql:
        assert psql is None
