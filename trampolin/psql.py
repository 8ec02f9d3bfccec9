"""Questions to a database through one psql process, for paths that should not wait
for psycopg's import (~80 ms): ``trampolin restore`` asks its target before
pg_restore runs and reads the restored migration records after.

psql starts, and connects, as the session opens, and stays connected between
questions, so a question asked later (after a long restore, say) costs neither
a process start nor a connection. Any failure (no psql, no connection, an SQL
error, an odd answer) gives None: the caller asks through psycopg instead,
which reports the error properly.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from trampolin.pgtools import child_connection, find_programs

Rows = list[list[str]]


class PsqlSession:
    """One running ``psql --csv``; ask() sends a statement and reads its rows."""

    def __init__(self, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self._stdin = stdin
        self._stdout = stdout
        # Printed after each answer (\echo): where the rows end.
        self._end = f"-- trampolin {os.urandom(8).hex()} --".encode()

    def ask(self, sql: str) -> Rows | None:
        """The rows of one SQL statement, as CSV fields; None if psql failed."""
        statement = sql.strip()
        if not statement.endswith(";"):
            statement += "\n;"  # on its own line: the SQL may end in a -- comment
        try:
            self._stdin.write(statement.encode() + b"\n\\echo " + self._end + b"\n")
            self._stdin.flush()
        except OSError:  # psql has ended
            return None
        lines: list[bytes] = []
        for line in iter(self._stdout.readline, b""):
            if line.rstrip(b"\n") == self._end:
                return list(csv.reader(io.StringIO(b"".join(lines).decode("utf-8", "replace"))))
            lines.append(line)
        return None  # psql ended: an error (ON_ERROR_STOP) or a lost connection

    def ask_file(self, path: Path) -> Rows | None:
        """The rows of the one statement in ``path``."""
        return self.ask(path.read_text(encoding="utf-8"))


@contextmanager
def psql_session(url: str) -> Iterator[PsqlSession | None]:
    """A psql connected to ``url`` for the block (None if there is no psql); the
    password goes through a PGPASSFILE that lives as long as the block."""
    psql = next(find_programs("psql"), None)
    if psql is None:
        yield None
        return
    with child_connection(url) as conn:
        # UTC and ISO dates, so that timestamps parse with datetime.fromisoformat.
        env = {**conn.env, "PGTZ": "UTC", "PGDATESTYLE": "ISO", "PGCLIENTENCODING": "UTF8"}
        argv = [
            str(psql), "--no-psqlrc", "--csv", "--tuples-only", "--quiet", "--no-password",
            "--set=ON_ERROR_STOP=1", f"--dbname={conn.dbname_arg}",
        ]  # fmt: skip
        with subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        ) as child:
            assert child.stdin is not None
            assert child.stdout is not None
            try:
                yield PsqlSession(child.stdin, child.stdout)
            finally:
                with suppress(OSError):
                    child.stdin.close()  # psql quits at the end of its input
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    child.kill()
