"""The example service (docs/examples/service) under a real uvicorn, and what its test sends.

A ``Service`` is uvicorn in a subprocess on a free port of 127.0.0.1, against a
database the test owns; its resident memory is read from /proc. ``CsvBody`` makes a
large CSV file chunk by chunk (and hashes it on the way), so that neither side has
to hold it. Webhook payloads are the recorded Stripe events of tests/stripe_support,
signed with Stripe's own scheme.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from tests import stripe_support

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "docs" / "examples" / "service"
WEBHOOK_SECRET = stripe_support.SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    log_file: IO[bytes]

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=120, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=120, **kwargs)

    def rss(self) -> int:
        """The server's resident memory now, in bytes (VmRSS)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024

    def log(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (uvicorn's graceful shutdown, which runs the lifespan's end); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        return self.process.returncode


def start_service(database_url: str, log_path: Path, *, pool_size: int = 10) -> Service:
    """uvicorn running the example app, answering; its log in ``log_path``."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "POOL_SIZE": str(pool_size),
        "TRAMPOLIN_BCRYPT_COST": "4",  # the lowest cost: logins in the test stay quick
    }
    log_file = log_path.open("wb")
    command = [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", str(APP_DIR)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    service = Service(process, f"http://127.0.0.1:{port}", log_path, log_file)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            service.stop()
            raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{service.log()}")
        try:
            if httpx.get(f"{service.base_url}/me", timeout=2).status_code == 401:
                return service
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"uvicorn did not answer within 60 s:\n{service.log()}")


class PeakRss(threading.Thread):
    """Samples a service's VmRSS every few milliseconds until stopped; the largest seen."""

    def __init__(self, service: Service, every: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.service = service
        self.every = every
        self.peak = service.rss()
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.service.rss())
            self.samples += 1
            self._stop_event.wait(self.every)

    def __enter__(self) -> PeakRss:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop_event.set()
        self.join()


class CsvBody:
    """A CSV file of about ``size`` bytes, made chunk by chunk; its SHA-256 as it goes.

    Plain values with LF line ends, which is how the export writes them back, so
    that a download equals the upload byte for byte.
    """

    HEADER = b"id,email,city,amount,note\n"

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0
        self.rows = 0
        self.digest = hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        yield self._counted(self.HEADER)
        while self.sent < self.size:
            lines = []
            for _ in range(1000):
                i = self.rows
                lines.append(
                    f"{i},user{i}@example.com,City {i % 97},{i * 7 % 100_000}.{i % 100:02d},"
                    f"note number {i} of a long upload\n"
                )
                self.rows += 1
            yield self._counted("".join(lines).encode())

    def _counted(self, chunk: bytes) -> bytes:
        self.sent += len(chunk)
        self.digest.update(chunk)
        return chunk


def signed(event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a webhook delivery of ``event``, signed as Stripe signs."""
    body = json.dumps(event).encode()
    return body, {"Stripe-Signature": stripe_support.sign(body, secret)}


def checkout_event(user_id: object, customer: str) -> dict[str, Any]:
    """checkout.session.completed naming ``user_id`` for ``customer``."""
    return stripe_support.variant(
        stripe_support.CHECKOUT,
        event_id=f"evt_checkout_{customer}",
        customer=customer,
        client_reference_id=str(user_id),
    )


def subscription_event(customer: str, price_id: str, status: str = "active") -> dict[str, Any]:
    """customer.subscription.created for ``customer`` at ``price_id``, its period around now."""
    event = stripe_support.variant(
        stripe_support.BASIL_CREATED,
        event_id=f"evt_sub_{customer}",
        created=int(time.time()),
        customer=customer,
        subscription_id=f"sub_{customer}",
        status=status,
    )
    item = event["data"]["object"]["items"]["data"][0]
    now = datetime.now(UTC)
    item["current_period_start"] = int((now - timedelta(days=1)).timestamp())
    item["current_period_end"] = int((now + timedelta(days=29)).timestamp())
    item["price"]["id"] = item["plan"]["id"] = price_id
    item["price"]["recurring"]["interval"] = item["plan"]["interval"] = "month"
    return event
