"""Questions to a database through one psql process, for paths that should not wait
for psycopg's import (~80 ms): ``trampolin restore`` asks its target before
pg_restore runs and reads the restored migration records after.

psql (12 or newer: ``--csv``) starts, and connects, as the session opens, and
stays connected between questions, so a question asked later (after a long
restore, say) costs neither a process start nor a connection. Any failure (no
psql, no connection, an SQL error, no answer within the deadline, an odd
answer) gives None: the caller asks through psycopg instead, which reports the
error properly.
"""

from __future__ import annotations

import csv
import io
import os
import selectors
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from trampolin.pgtools import child_connection, find_programs

Rows = list[list[str]]

# How long an answer may take. Ours take milliseconds; a connection that a NAT
# dropped while it sat idle through a long restore would otherwise leave psql
# retransmitting for a quarter of an hour.
ANSWER_SECONDS = 30.0


class PsqlSession:
    """One running ``psql --csv``; ask() sends a statement and reads its rows."""

    def __init__(self, child: subprocess.Popen[bytes], deadline: float | None = None) -> None:
        assert child.stdin is not None
        assert child.stdout is not None
        self._child = child
        self._stdin = child.stdin
        self._stdout = child.stdout.fileno()
        self._deadline = ANSWER_SECONDS if deadline is None else deadline
        # Printed after each answer (\echo): where its rows end.
        self._end = f"-- trampolin {os.urandom(8).hex()} --\n".encode()

    def ask(self, sql: str) -> Rows | None:
        """The rows of ONE SQL statement without parameters, as CSV fields; None if
        psql failed or did not answer in time (psql is then stopped)."""
        # The ; on a line of its own: the SQL may end in a -- comment (an extra ;
        # after one that ends the statement is an empty query, which prints nothing).
        message = sql.strip().encode() + b"\n;\n\\echo " + self._end
        if self._stdin.closed:
            return None
        try:
            self._stdin.write(message)
            self._stdin.flush()
        except OSError:  # psql has ended
            return None
        answer = self._read_answer()
        if answer is None:
            self._child.kill()
            return None
        return list(csv.reader(io.StringIO(answer.decode("utf-8", "replace"))))

    def close(self) -> None:
        """End psql, and its connection, now; ask() then gives None."""
        with suppress(OSError):
            self._stdin.close()  # psql quits at the end of its input
        try:
            self._child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._child.kill()

    def _read_answer(self) -> bytes | None:
        """Everything psql prints up to the end marker; None at EOF or the deadline."""
        received = b""
        give_up = time.monotonic() + self._deadline
        with selectors.DefaultSelector() as selector:
            selector.register(self._stdout, selectors.EVENT_READ)
            while not received.endswith(self._end):
                left = give_up - time.monotonic()
                if left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(self._stdout, 1 << 16)
                if not chunk:
                    return None  # psql ended: an error (ON_ERROR_STOP) or a lost connection
                received += chunk
        return received[: -len(self._end)]


@contextmanager
def psql_session(url: str) -> Iterator[PsqlSession | None]:
    """A psql connected to ``url`` for the block (None if there is no psql that runs);
    the password goes through a PGPASSFILE that lives as long as the block."""
    psql = next(find_programs("psql"), None)
    if psql is None:
        yield None
        return
    with child_connection(url) as conn:
        env = {
            **conn.env,
            # UTC and ISO dates, so that timestamps parse with datetime.fromisoformat.
            "PGTZ": "UTC",
            "PGDATESTYLE": "ISO",
            "PGCLIENTENCODING": "UTF8",
            "PGAPPNAME": conn.env.get("PGAPPNAME", "trampolin"),
        }
        argv = [
            str(psql), "--no-psqlrc", "--csv", "--tuples-only", "--quiet", "--no-password",
            "--set=ON_ERROR_STOP=1", f"--dbname={conn.dbname_arg}",
        ]  # fmt: skip
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError:  # not a program this machine can run
            child = None
        if child is None:
            yield None
            return
        with child:
            session = PsqlSession(child)
            try:
                yield session
            finally:
                session.close()
