"""Shared by the usage, analyses and refunds tests: subscriptions, admins, ledger checks."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from trampolin import queries
from trampolin.auth import AuthAdapter

sql = queries.load_file(Path(__file__).parent / "sql" / "usage.sql")


class Billing:
    """Subscriptions and checks, written straight into the test database."""

    def __init__(self, conn: psycopg.Connection[Any], make_user: Callable[..., uuid.UUID]):
        self.conn = conn
        self.make_user = make_user
        self._n = 0

    def subscriber(self, **kwargs: Any) -> uuid.UUID:
        """A new user with a subscription (see subscribe)."""
        user = self.make_user()
        self.subscribe(user, **kwargs)
        return user

    def subscribe(
        self,
        user: uuid.UUID,
        *,
        status: str = "active",
        price_id: str | None = "price_test",
        stripe: bool = True,
        started: timedelta = timedelta(days=3),
        length: timedelta | None = timedelta(days=30),
        trial_days: int | None = None,
    ) -> uuid.UUID:
        """A subscription of ``user`` whose billing period began ``started`` ago; its row id."""
        self._n += 1
        now = datetime.now(UTC)
        start = now - started
        trial = trial_days is not None
        row = sql.insert_subscription.one(
            self.conn,
            stripe_subscription_id=f"sub_test_{self._n}_{uuid.uuid4().hex[:8]}" if stripe else None,
            user_id=user,
            customer_id=f"cus_test_{self._n}",
            status=status,
            price_id=price_id,
            period_start=None if trial and not stripe else start,
            period_end=None if (trial and not stripe) or length is None else start + length,
            trial_start=start if trial else None,
            trial_end=start + timedelta(days=trial_days) if trial_days is not None else None,
        )
        assert row is not None
        return uuid.UUID(str(row["id"]))

    def admin(self) -> uuid.UUID:
        user = self.make_user()
        AuthAdapter(self.conn).set_role(user, "admin")
        return user

    def assert_balanced(self) -> None:
        """Every period's counter equals the sum of its ledger."""
        assert sql.unbalanced.many(self.conn) == []

    def ledger(self, user: uuid.UUID) -> list[tuple[int, str]]:
        return [(r["amount"], r["reason"]) for r in sql.ledger.many(self.conn, user_id=user)]

    def sums(self, user: uuid.UUID) -> dict[str, int]:
        row = sql.ledger_sums.one(self.conn, user_id=user)
        assert row is not None
        return {key: int(value) for key, value in row.items()}


def run_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads started together; their results, or errors raised."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def no_errors(results: Sequence[Any]) -> None:
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]
