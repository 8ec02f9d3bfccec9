"""Shared by the migration tests: a migrations directory of the test's own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Write = Callable[[str, str], Path]


def migrations_dir_in(tmp_path: Path) -> Path:
    """A new, empty migrations directory under ``tmp_path``."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    return directory


def writer(directory: Path) -> Write:
    """write(name, text): a UTF-8 file in ``directory``."""

    def write(name: str, text: str) -> Path:
        path = directory / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
