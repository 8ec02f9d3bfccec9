"""Running the client programs: wait for them while progress ticks, stop them on
Ctrl-C or SIGTERM, and read what went wrong from their stderr."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

# progress(bytes done, bytes in all, what is being worked on): a dump's tables by
# their size in the catalog, a restore's archive by how far pg_restore has read it.
Progress = Callable[[int, int, str], None]

TICK_SECONDS = 0.2
_ERROR = re.compile(r"\b(?:ERROR|FATAL|PANIC|error|fatal):\s*")


def wait_all(children: Sequence[subprocess.Popen[Any]], tick: Callable[[], None] | None) -> None:
    """Wait until every child has ended, calling ``tick()`` every 0.2 s if given.

    Any exception meanwhile (Ctrl-C, the SIGTERM handler's SystemExit) stops
    the children before it goes on: a restore's connection then closes before
    its COMMIT, and the server rolls the transaction back.
    """
    try:
        for child in children:
            while True:
                try:
                    child.wait(timeout=None if tick is None else TICK_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    assert tick is not None
                    tick()
    except BaseException:
        for child in children:
            stop(child)
        raise


def stop(child: subprocess.Popen[Any]) -> None:
    """End ``child`` now. SIGINT first: pg_dump and psql then ask the server to cancel
    the running statement, which would otherwise run on (an index build, for hours)
    after its client has gone; SIGKILL if it has not ended within 2 s."""
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=2)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class Stderr:
    """A child's stderr in an anonymous temporary file: it never fills up as a pipe
    would while nobody reads it, and disappears with us, even after kill -9."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by __exit__)
        self._read = 0

    def __enter__(self) -> Stderr:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._file.close()

    def fileno(self) -> int:
        return self._file.fileno()

    def new_lines(self) -> list[str]:
        """The whole lines written since the last call. Read with pread: the child
        writes at the file offset that it shares with us, which a read would move."""
        size = os.fstat(self.fileno()).st_size
        chunk = os.pread(self.fileno(), max(0, size - self._read), self._read)
        whole = chunk[: chunk.rfind(b"\n") + 1]
        self._read += len(whole)
        return whole.decode("utf-8", "replace").splitlines()

    def errors(self) -> list[str]:
        """The error lines, each without the program's prefix, and their DETAIL and HINT."""
        size = os.fstat(self.fileno()).st_size
        text = os.pread(self.fileno(), size, 0).decode("utf-8", "replace")
        return error_lines(text)


def error_lines(text: str) -> list[str]:
    """The error lines of a client program's stderr ``text`` (``pg_restore: error: ...``,
    ``psql:<stdin>:12: ERROR:  ...``) from the error on, and the DETAIL and HINT lines
    that follow them."""
    errors: list[str] = []
    for line in text.splitlines():
        match = _ERROR.search(line)
        if match is not None:
            errors.append(" ".join(line[match.end() :].split()))
        elif errors and line.startswith(("DETAIL", "HINT")):
            errors.append(" ".join(line.split()))
    return errors


def failure_detail(errors: list[str], returncode: int) -> str:
    """What went wrong, on one line, for a BackupError."""
    detail = "; ".join(dict.fromkeys(errors)) or f"exit code {returncode}"
    if any(sign in detail for sign in ("end of file", "could not read", "did not find magic")):
        detail += " (the archive is truncated or corrupt)"
    return detail
