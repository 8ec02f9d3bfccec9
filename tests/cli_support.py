"""Helpers for the CLI's process tests: a database that starts accepting connections late."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import quote

from tests.support import TestServer


class LateServer:
    """A local TCP port that refuses connections for ``delay`` seconds, then forwards each one
    to the test server: a managed database that is still starting when the deploy begins."""

    def __init__(self, server: TestServer, delay: float) -> None:
        self.server = server
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        threading.Thread(target=self._serve, args=(delay,), daemon=True).start()

    def url(self, dbname: str) -> str:
        auth = quote(self.server.user, safe="")
        if self.server.password:
            auth += ":" + quote(self.server.password, safe="")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()

    def _serve(self, delay: float) -> None:
        if self._stop.wait(delay):
            return
        self._listener = socket.create_server(("127.0.0.1", self.port))
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = self._connect_upstream()
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if self.server.host.startswith("/"):  # the embedded server: a Unix socket
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(f"{self.server.host}/.s.PGSQL.{self.server.port}")
            return upstream
        return socket.create_connection((self.server.host, self.server.port))


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for end in (source, sink):
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
