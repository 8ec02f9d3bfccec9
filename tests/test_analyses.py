"""Searches and URL analyses: reserve, claim, complete, fail, recover, history; races."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.twins import Side
from tests.usage_support import Billing, no_errors, run_threads, sql
from trampolin.analyses import Analyses
from trampolin.errors import InvalidInput, LimitExceeded, NotFound
from trampolin.usage import Usage


@pytest.fixture
def billing(conn: psycopg.Connection[Any], make_user: Callable[..., uuid.UUID]) -> Billing:
    return Billing(conn, make_user)


def used(conn: psycopg.Connection[Any], user: uuid.UUID) -> int:
    allowance = Usage(conn).allowance(user)
    assert allowance is not None
    return allowance.used


# -- starting a search -----------------------------------------------------------


def test_start_search_normalizes_reserves_and_queues(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    search = side.repo(Analyses).start_search(
        user, ["https://www.shop.example/a?utm=1", "b.example", "shop.example/a/"]
    )
    assert (search.user_id, search.status, search.url_count, search.pending_count) == (
        user,
        "pending",
        2,
        2,
    )
    assert [(i.url, i.status, i.reach) for i in search.analyses] == [
        ("shop.example/a", "pending", None),
        ("b.example", "pending", None),
    ]
    assert used(billing.conn, user) == 2
    assert billing.ledger(user) == [(2, "search")]
    assert sql.ledger.many(billing.conn, user_id=user)[0]["search_id"] == search.id
    assert side.repo(Analyses).search(search.id, user) == search
    billing.assert_balanced()


def test_too_few_units_and_nothing_is_written(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    side.repo(Usage).set_plan_limit("price_test", 2)
    analyses = side.repo(Analyses)
    with pytest.raises(LimitExceeded, match="3 unit\\(s\\) requested, 2 remain"):
        analyses.start_search(user, ["a.example", "b.example", "c.example"])
    assert analyses.history(user) == []
    assert sql.analyses_of.many(billing.conn, user_id=user) == []
    assert billing.ledger(user) == []
    with pytest.raises(LimitExceeded, match="no subscription"):
        analyses.start_search(billing.make_user(), ["a.example"])


def test_a_finished_analysis_is_re_run_and_a_running_one_joined(
    side: Side, billing: Billing
) -> None:
    user = billing.subscriber()
    analyses = side.repo(Analyses)
    first = analyses.start_search(user, ["a.example", "b.example"])
    [a, b] = sorted(analyses.claim(), key=lambda x: x.url)
    analyses.complete(a.id, results={"totalReach": 7}, reach=7)
    # a.example is finished: re-run (same analysis, charged again); b.example runs: joined
    second = analyses.start_search(user, ["a.example", "b.example", "c.example"])
    ids = {i.url: i.analysis_id for i in second.analyses}
    assert ids["a.example"] == a.id
    assert ids["b.example"] == b.id
    assert used(billing.conn, user) == 4  # 2 + a again + c
    assert [r["url"] for r in sql.analyses_of.many(billing.conn, user_id=user)] == [
        "a.example",
        "b.example",
        "c.example",
    ]
    done = analyses.complete(b.id, results={"totalReach": 5}, reach=5)
    assert done is not None
    for search_id in (first.id, second.id):
        found = analyses.search(search_id, user)
        assert found is not None
        assert {i.url: i.status for i in found.analyses}["b.example"] == "completed"
    found_first = analyses.search(first.id, user)
    assert found_first is not None
    assert (found_first.status, found_first.total_reach) == ("completed", 12)


def test_admins_search_without_limit(side: Side, billing: Billing) -> None:
    admin = billing.admin()
    search = side.repo(Analyses).start_search(admin, [f"s{i}.example" for i in range(50)])
    assert search.url_count == 50
    billing.assert_balanced()


# -- workers ---------------------------------------------------------------------


def test_claim_takes_the_oldest_pending_analyses(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    analyses = side.repo(Analyses)
    analyses.start_search(user, ["a.example", "b.example"])
    analyses.start_search(user, ["c.example"])
    claimed = analyses.claim(2)  # the first search's (queued in one transaction: a tie)
    assert sorted((a.url, a.status, a.attempts) for a in claimed) == [
        ("a.example", "processing", 1),
        ("b.example", "processing", 1),
    ]
    assert all(a.claimed_at is not None for a in claimed)
    assert [a.url for a in analyses.claim(5)] == ["c.example"]
    assert analyses.claim() == []


def test_complete_settles_the_search_and_reach_zero_gives_back(
    side: Side, billing: Billing
) -> None:
    user = billing.subscriber()
    analyses = side.repo(Analyses)
    search = analyses.start_search(user, ["a.example", "b.example", "c.example"])
    by_url = {a.url: a for a in analyses.claim()}
    done = analyses.complete(by_url["a.example"].id, results={"adCount": 3}, reach=1200)
    assert done is not None
    assert (done.status, done.results, done.reach) == ("completed", {"adCount": 3}, 1200)
    assert done.finished_at is not None
    analyses.complete(by_url["b.example"].id, results={}, reach=0)
    failed = analyses.fail(by_url["c.example"].id, "reach service timed out")
    assert failed is not None
    assert (failed.status, failed.error) == ("failed", "reach service timed out")
    found = analyses.search(search.id, user)
    assert found is not None
    assert (found.status, found.pending_count, found.failed_count, found.total_reach) == (
        "completed",
        0,
        1,
        1200,
    )
    assert found.completed_at is not None
    assert [(i.status, i.reach) for i in found.analyses] == [
        ("completed", 1200),
        ("completed", 0),
        ("failed", None),
    ]
    assert used(billing.conn, user) == 1  # only the URL with reach is paid for
    assert billing.ledger(user) == [(3, "search"), (-1, "no reach"), (-1, "analysis failed")]
    billing.assert_balanced()


def test_a_search_whose_analyses_all_fail_fails(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    analyses = side.repo(Analyses)
    search = analyses.start_search(user, ["a.example", "b.example"])
    for analysis in analyses.claim():
        analyses.fail(analysis.id, "boom")
    found = analyses.search(search.id, user)
    assert found is not None
    assert (found.status, found.failed_count) == ("failed", 2)
    assert used(billing.conn, user) == 0


def test_settling_twice_or_unclaimed_does_nothing(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    analyses = side.repo(Analyses)
    search = analyses.start_search(user, ["a.example"])
    pending_id = search.analyses[0].analysis_id
    assert analyses.complete(pending_id, results={}, reach=1) is None  # not claimed
    [claimed] = analyses.claim()
    assert analyses.fail(claimed.id, "first") is not None
    assert analyses.fail(claimed.id, "again") is None
    assert analyses.complete(claimed.id, results={}, reach=0) is None
    assert analyses.complete(uuid.uuid4(), results={}, reach=0) is None
    assert analyses.fail("not-an-id", "x") is None
    assert billing.ledger(user) == [(1, "search"), (-1, "analysis failed")]


def test_a_crashed_worker_s_analysis_is_claimed_again(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    analyses = side.repo(Analyses)
    analyses.start_search(user, ["a.example"])
    [first] = analyses.claim()
    assert analyses.claim() == []  # still within the first worker's claim
    sql.age_claim.exec(billing.conn, id=first.id, by=timedelta(minutes=16))
    [again] = analyses.claim()  # the default timeout is 15 minutes
    assert (again.id, again.attempts) == (first.id, 2)
    assert analyses.claim(stale_after=timedelta(seconds=30)) == []
    assert analyses.complete(again.id, results={"ok": True}, reach=9) is not None
    assert analyses.complete(first.id, results={"late": True}, reach=0) is None  # too late
    got = analyses.get(first.id, user)
    assert got is not None
    assert (got.results, got.reach) == ({"ok": True}, 9)
    assert used(billing.conn, user) == 1


def test_a_worker_whose_transaction_dies_leaves_the_claim_to_expire(
    side: Side, billing: Billing
) -> None:
    user = billing.subscriber()
    side.repo(Analyses).start_search(user, ["a.example"])
    claimed: list[Any] = []

    def worker_that_dies() -> None:
        with side.connect(Analyses, autocommit=False) as worker:
            claimed.extend(worker.claim())
            worker.conn.commit()
            worker.complete(claimed[0].id, results={}, reach=3)
            raise RuntimeError("the worker dies before COMMIT: the completion is lost")

    with pytest.raises(RuntimeError):
        worker_that_dies()
    analyses = side.repo(Analyses)
    got = analyses.get(claimed[0].id, user)
    assert got is not None
    assert got.status == "processing"
    [again] = analyses.claim(stale_after=timedelta(microseconds=1))
    assert again.id == claimed[0].id


# -- reading ---------------------------------------------------------------------


def test_history_pages_newest_first(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    other = billing.subscriber()
    analyses = side.repo(Analyses)
    made = [analyses.start_search(user, [f"s{i}.example"]) for i in range(5)]
    theirs = analyses.start_search(other, ["x.example"])
    pages: list[list[uuid.UUID]] = []
    before = None
    while True:
        page = analyses.history(user, before=before, limit=2)
        if not page:
            break
        pages.append([s.id for s in page])
        before = page[-1].id
    assert pages == [[made[4].id, made[3].id], [made[2].id, made[1].id], [made[0].id]]
    assert analyses.history(user, before=theirs.id) == []
    assert analyses.history(user, before=uuid.uuid4()) == []
    assert analyses.history(user, before="nope") == []
    assert analyses.history("nope") == []
    assert [s.id for s in analyses.history(other)] == [theirs.id]


def test_get_checks_ownership(side: Side, billing: Billing) -> None:
    user, other = billing.subscriber(), billing.subscriber()
    analyses = side.repo(Analyses)
    search = analyses.start_search(user, ["a.example"])
    analysis_id = search.analyses[0].analysis_id
    got = analyses.get(analysis_id, user)
    assert got is not None
    assert (got.url, got.status, got.user_id) == ("a.example", "pending", user)
    assert analyses.get(analysis_id, other) is None
    assert analyses.get(uuid.uuid4(), user) is None
    assert analyses.get("nope", user) is None
    assert analyses.search(search.id, other) is None


# -- bad input -------------------------------------------------------------------


def test_bad_input(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    analyses = side.repo(Analyses)
    for urls, message in [
        ([], "at least one URL"),
        ("a.example", "not one string"),
        (["a.example", "ftp://b.example"], "only http and https"),
        ([None], "url must be a string"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            analyses.start_search(user, urls)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        analyses.start_search("nope", ["a.example"])
    with pytest.raises(NotFound, match="no user with id"):
        analyses.start_search(uuid.uuid4(), ["a.example"])
    analyses.start_search(user, ["a.example"])
    [claimed] = analyses.claim()
    bad_completions: list[tuple[dict[str, Any], str]] = [
        ({"results": [], "reach": 1}, "results must be a JSON object"),
        ({"results": {"x": float("nan")}, "reach": 1}, "not plain JSON"),
        ({"results": {"x": "\x00"}, "reach": 1}, "NUL"),
        ({"results": {}, "reach": -1}, "reach must be between 0"),
        ({"results": {}, "reach": True}, "reach must be an integer"),
    ]
    for kwargs, message in bad_completions:
        with pytest.raises(InvalidInput, match=message):
            analyses.complete(claimed.id, **kwargs)
    with pytest.raises(InvalidInput, match="error must be a string"):
        analyses.fail(claimed.id, None)  # type: ignore[arg-type]
    for limit in (0, 1001, True):
        with pytest.raises(InvalidInput, match="limit must be"):
            analyses.claim(limit)
    for bad in (timedelta(0), timedelta(days=10**8)):
        with pytest.raises(InvalidInput, match="stale_after must be a timedelta above 0"):
            analyses.claim(stale_after=bad)
    with pytest.raises(InvalidInput, match="limit must be"):
        analyses.history(user, limit=0)
    got = analyses.get(claimed.id, user)
    assert got is not None
    assert got.status == "processing"  # nothing was written by the refused calls
    assert used(billing.conn, user) == 1


# -- races -----------------------------------------------------------------------


def test_eight_concurrent_searches_of_overlapping_urls(side: Side, billing: Billing) -> None:
    user = billing.subscriber()
    side.repo(Usage).set_plan_limit("price_test", 20)
    pool = [f"site{i}.example" for i in range(12)]

    def work(i: int) -> Any:
        urls = [pool[(i * 3 + k) % len(pool)] for k in range(6)]
        with side.connect(Analyses) as analyses:
            try:
                return analyses.start_search(user, urls)
            except LimitExceeded as exc:
                return exc

    results = run_threads(8, work)
    searches = [r for r in results if not isinstance(r, LimitExceeded)]
    no_errors(searches)
    rows = sql.analyses_of.many(billing.conn, user_id=user)
    assert len(rows) == len({r["url"] for r in rows})  # no duplicate analyses
    assert {r["url"] for r in rows} == {i.url for s in searches for i in s.analyses}
    # nothing ran yet: each analysis was paid for once, by the search that queued it
    assert used(billing.conn, user) == len(rows) <= 20
    assert billing.sums(user)["charged"] == len(rows)
    billing.assert_balanced()


def test_two_workers_never_claim_the_same_analysis(side: Side, billing: Billing) -> None:
    user = billing.admin()
    side.repo(Analyses).start_search(user, [f"s{i}.example" for i in range(120)])

    def work(_: int) -> list[uuid.UUID]:
        mine: list[uuid.UUID] = []
        with side.connect(Analyses) as analyses:
            while batch := analyses.claim(3):
                mine.extend(a.id for a in batch)
        return mine

    results = run_threads(4, work)
    no_errors(results)
    claimed = [analysis_id for mine in results for analysis_id in mine]
    assert len(claimed) == len(set(claimed)) == 120


def test_workers_settling_analyses_shared_by_searches_do_not_deadlock(
    side: Side, billing: Billing
) -> None:
    user = billing.admin()
    analyses = side.repo(Analyses)
    urls = [f"s{i}.example" for i in range(8)]
    searches = [analyses.start_search(user, urls[::step]) for step in (1, -1, 2, -2, 1)]
    claimed = analyses.claim(100)

    def work(i: int) -> None:
        with side.connect(Analyses) as worker:
            for analysis in claimed[i::4]:
                if analysis.url.endswith(("1.example", "5.example")):
                    worker.fail(analysis.id, "no data")
                else:
                    worker.complete(analysis.id, results={}, reach=10)

    no_errors(run_threads(4, work))
    for search in searches:
        found = analyses.search(search.id, user)
        assert found is not None
        assert found.status == "completed"
        assert found.total_reach == 10 * sum(
            1 for i in found.analyses if not i.url.endswith(("1.example", "5.example"))
        )
    billing.assert_balanced()
