"""One psql process and its connection, for ``trampolin restore``: the questions
before pg_restore runs, the restore itself (pg_restore's script streamed into
psql's input), and the migration records after, all on one connection and
without psycopg's ~80 ms import.

psql (12 or newer: ``--csv``) starts, and connects, as the session opens.
ask() sends one statement and reads its rows up to an end marker, within a
deadline. Any failure (no psql, no connection, an SQL error, no answer in
time, an odd answer) gives None, and psql's error lines are kept in
``errors``: the caller falls back to psycopg or reports them.
"""

from __future__ import annotations

import csv
import io
import os
import re
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from trampolin.pgtools import child_connection, find_programs

Rows = list[list[str]]

# How long an answer may take. Ours take milliseconds; a connection that a NAT
# dropped while it sat idle would otherwise leave psql retransmitting for a
# quarter of an hour.
ANSWER_SECONDS = 30.0

# psql's error lines ("psql:<stdin>:12: ERROR:  ...", "psql: error: connection ...").
_ERROR = re.compile(r"\b(ERROR|FATAL|PANIC|error):")


class PsqlSession:
    """One running ``psql --csv``: ask() questions, or feed it a script."""

    def __init__(self, program: Path, child: subprocess.Popen[bytes]) -> None:
        self.program = program
        assert child.stdin is not None
        assert child.stdout is not None
        assert child.stderr is not None
        self._child = child
        self._stdin = child.stdin
        self._stdout = child.stdout.fileno()
        # Printed after each answer (\echo): where its rows end.
        self._end = f"-- trampolin {os.urandom(8).hex()} --\n".encode()
        self._received = b""  # read past the end of an answer
        self.errors: list[str] = []
        self._stderr = threading.Thread(target=self._keep_errors, args=(child.stderr,))
        self._stderr.start()

    @property
    def script_input(self) -> IO[bytes]:
        """psql's input, for a child's stdout (pg_restore -f -): nothing else may write
        to it until that child has ended."""
        return self._stdin

    def send(self, script: bytes) -> bool:
        """Write ``script`` to psql; False if psql has ended."""
        try:
            self._stdin.write(script)
            self._stdin.flush()
        except (OSError, ValueError):  # psql has ended, or the session was closed
            return False
        return True

    def ask(self, sql: str) -> Rows | None:
        """The rows that ``sql`` (statements without parameters; only one of them
        returning rows) prints, as CSV fields; None if psql failed or did not answer
        in time (psql is then stopped)."""
        if not self.send(self._question(sql)):
            return None
        return self.answer()

    def _question(self, sql: str) -> bytes:
        # The ; on a line of its own: the SQL may end in a -- comment (an extra ;
        # after one that ends the statement is an empty query, which prints nothing).
        # \o: query output back to stdout, after a script that sent it away.
        return b"\\o\n" + sql.strip().encode() + b"\n;\n" + self.end_of_answer

    @property
    def end_of_answer(self) -> bytes:
        """The psql command that ends an answer; answer() reads up to its output."""
        return b"\\echo " + self._end

    def answer(self) -> Rows | None:
        """What psql printed up to the end of the answer, as CSV rows; None if psql
        failed or did not answer in time (psql is then stopped)."""
        answer = self._read_answer(ANSWER_SECONDS)
        if answer is None:
            self.abort()
            return None
        return list(csv.reader(io.StringIO(answer.decode("utf-8", "replace"))))

    def start_script(self) -> bool:
        """Prepare for a script (pg_restore's, which holds its own BEGIN and COMMIT):
        the output of its queries is discarded (its SELECTs print rows nobody reads,
        which would fill the pipe). False if psql has ended."""
        return self.send(b"\\o /dev/null\n")

    def start_script_if(
        self, question: str, columns: Sequence[str], gate: str, variables: Mapping[str, str]
    ) -> bool:
        """Ask ``question`` (one row: ``columns``), then ``gate`` (one boolean column,
        ``go``, computed from those columns and ``variables`` as psql variables; a
        value may be another variable's, ``:VERSION_NUM`` say), then
        start_script() if go; else psql quits, and nothing sent after it runs. The
        answer, for answer(), is the question's row and go, comma-separated. False if
        psql has ended."""
        names = [*columns, "go"]
        script = "".join(f"\\set {name} {value}\n" for name, value in variables.items())
        script += f"{question.strip().removesuffix(';')}\n\\gset\n"  # \gset sends it
        script += f"{gate.strip().removesuffix(';')}\n\\gset\n"
        script += f"\\echo {','.join(':' + name for name in names)}\n"
        script += self.end_of_answer.decode()
        # Fails closed: a go that is not a boolean (unset, say) counts as false.
        script += "\\if :go\n\\else\n\\quit\n\\endif\n"
        script += "".join(f"\\unset {name}\n" for name in [*names, *variables])
        return self.send(script.encode()) and self.start_script()

    def confirm(self, then: str | None = None) -> bool:
        """Wait, without a deadline, until psql has run everything sent so far (a
        script's last index builds may take hours); False if it stopped at an error.

        ``then``: the session's last question, sent behind the script at once, so
        that psql answers it, and ends, without waiting for a round trip to us;
        answer() reads its rows.
        """
        last = b"" if then is None else self._question(then)
        sent = self.send(b"\\o\n" + self.end_of_answer + last)
        if then is not None:
            self._close_input()  # psql quits after the last question
        return sent and self._read_answer(deadline=None) is not None

    def abort(self) -> None:
        """Stop psql now: SIGINT first, so that it asks the server to cancel a running
        statement (an index build would otherwise run on), then SIGKILL. The server
        rolls back the open transaction, if any."""
        self._stop(lambda: self._child.send_signal(signal.SIGINT), patience=2)

    def close(self) -> None:
        """End psql, and its connection, now; ask() then gives None."""
        self._stop(self._close_input, patience=5)

    def _close_input(self) -> None:
        with suppress(OSError):
            self._stdin.close()  # psql quits at the end of its input

    def _stop(self, ask_to_end: Callable[[], None], patience: float) -> None:
        """``ask_to_end()``, wait ``patience`` seconds, then SIGKILL."""
        if self._child.poll() is None:
            ask_to_end()
            try:
                self._child.wait(timeout=patience)
            except subprocess.TimeoutExpired:
                self._child.kill()
        self._child.wait()
        self._close_input()  # whatever is left unsent goes: psql has ended
        self._stderr.join()

    def _read_answer(self, deadline: float | None) -> bytes | None:
        """Everything psql prints up to the end marker; None at EOF or after ``deadline``
        seconds (None: no deadline)."""
        give_up = None if deadline is None else time.monotonic() + deadline
        received = self._received
        with selectors.DefaultSelector() as selector:
            selector.register(self._stdout, selectors.EVENT_READ)
            while (end := received.find(self._end)) < 0:
                left = None if give_up is None else give_up - time.monotonic()
                if (left is not None and left <= 0) or not selector.select(left):
                    return None
                chunk = os.read(self._stdout, 1 << 16)
                if not chunk:
                    return None  # psql ended: an error (ON_ERROR_STOP) or a lost connection
                received += chunk
        self._received = received[end + len(self._end) :]  # the next answers, if any yet
        return received[:end]

    def _keep_errors(self, stream: IO[bytes]) -> None:
        """Drain psql's stderr (it must never fill); keep the error lines and their
        DETAIL / HINT."""
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if _ERROR.search(line):
                self.errors.append(line.removeprefix("psql: ").removeprefix("error: "))
            elif self.errors and line.startswith(("DETAIL", "HINT")):
                self.errors.append(line)


@contextmanager
def psql_session(url: str, program: Path | None = None) -> Iterator[PsqlSession | None]:
    """A psql (``program``, else the first found) connected to ``url`` for the block,
    or None if there is none that runs; the password goes through a PGPASSFILE that
    lives as long as the block."""
    psql = program if program is not None else next(find_programs("psql"), None)
    if psql is None or not psql.is_file():
        yield None
        return
    with child_connection(url) as conn:
        env = {**conn.env, "PGAPPNAME": conn.env.get("PGAPPNAME", "trampolin")}
        argv = [
            str(psql), "--no-psqlrc", "--csv", "--tuples-only", "--quiet", "--no-password",
            "--set=ON_ERROR_STOP=1", f"--dbname={conn.dbname_arg}",
        ]  # fmt: skip
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError:  # not a program this machine can run
            child = None
        if child is None:
            yield None
            return
        with child:
            session = PsqlSession(psql, child)
            try:
                yield session
            finally:
                session.close()
