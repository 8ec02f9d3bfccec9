"""The named-query loader: parsing, every shipped file, clear errors (no database)."""

from pathlib import Path

import pytest

from trampolin import queries
from trampolin.errors import QueryFileError
from trampolin.queries import parse_queries, sql_root

PATH = Path("area.sql")


def test_parses_names_kinds_docs_and_lines() -> None:
    text = """-- File header comment.

-- name: get_thing :one
-- The thing with that id.
-- Second doc line.
SELECT * FROM things
WHERE id = %(id)s;

-- name: list_things :many
SELECT * FROM things WHERE owner = %(owner)s AND kind = %(kind)s;
"""
    queries = parse_queries(text, PATH)
    assert list(queries) == ["get_thing", "list_things"]
    get = queries["get_thing"]
    assert (get.kind, get.line) == ("one", 3)
    assert get.doc == "The thing with that id.\nSecond doc line."
    assert get.sql == "SELECT * FROM things\nWHERE id = %(id)s;"
    assert queries["list_things"].params == {"owner", "kind"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: Bad :one\nSELECT 1;", "area.sql:1: expected '-- name: snake_case_name :kind'"),
        ("-- name: thing :maybe\nSELECT 1;", "area.sql:1: unknown kind :maybe"),
        ("-- name: thing\nSELECT 1;", "area.sql:1: expected"),
        ("-- name: thing :one\n-- only docs\n", "area.sql:1: query thing has no SQL"),
        ("SELECT 1;\n-- name: thing :one\nSELECT 1;", "area.sql:1: SQL before the first"),
        (
            "-- name: thing :one\nSELECT 1;\n\n-- name: thing :many\nSELECT 2;",
            "area.sql:4: query thing is defined twice (first at line 1)",
        ),
    ],
)
def test_malformed_files_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(QueryFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_queries(text, PATH)


def test_every_shipped_query_file_parses() -> None:
    files = sorted((sql_root() / "queries").glob("*.sql"))
    assert files
    for path in files:
        assert len(queries.load(path.stem)) > 0


def test_unknown_file_and_unknown_query_are_clear() -> None:
    with pytest.raises(QueryFileError, match="no such query file"):
        queries.load("nope")
    with pytest.raises(AttributeError, match=r"admin\.sql has no query named 'nope'"):
        _ = queries.load("admin").nope
