"""The operator console's read models on SQLite and PostgreSQL: accounts found by id or name
and paged by id with month-to-date spend and status; the ledger paged with running balances
that add up to the entries; webhook deliveries with every attempt; reconcile status."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from creditgate import jobs
from creditgate.accounts import service as accounts
from creditgate.clock import ManualClock, to_ms
from creditgate.errors import NotFound, ValidationError
from creditgate.notify import service as notify
from creditgate.workflows import console, grants
from creditgate.workflows.context import Context
from tests import support, usage_support
from tests.stripe_support import Sink, sink  # noqa: F401 - fixture

T = TypeVar("T")
NOW = datetime(2026, 3, 20, 15, 30, tzinfo=UTC)


def run(database_url: str, scenario: Callable[[Context], Awaitable[T]]) -> T:
    return usage_support.run_at(database_url, NOW, scenario)


def _all_pages(database_url: str, search: str, limit: int) -> list[console.AccountPage]:
    pages, after = [], None
    while True:
        page = run(
            database_url,
            lambda ctx, a=after: console.list_accounts(ctx, search=search, after=a, limit=limit),  # type: ignore[misc]
        )
        pages.append(page)
        if page.next_after is None:
            return pages
        after = page.next_after


def test_search_by_id_or_name_and_page(server: support.LiveServer, database_url: str) -> None:
    tag = uuid.uuid4().hex[:10]
    ids = sorted(f"{tag}-{i}" for i in range(5))
    for i, account_id in enumerate(ids):
        support.create_account(server, account_id, name=f"Team {i} of ACME_{tag}%")
    named = support.create_account(server, name=f"Other {tag.upper()} Ltd")
    pages = _all_pages(database_url, tag, limit=2)
    assert [len(p.rows) for p in pages] == [2, 2, 2]
    found = [r.account.id for p in pages for r in p.rows]
    assert found == sorted([*ids, named])  # id order, every match once, found by name too
    # case-insensitive; % and _ are plain characters, not patterns
    assert [
        r.account.id
        for r in run(database_url, lambda ctx: console.list_accounts(ctx, search=f"acme_{tag}%")).rows
    ] == ids
    assert run(database_url, lambda ctx: console.list_accounts(ctx, search=f"acme%{tag}")).rows == []
    assert (
        run(database_url, lambda ctx: console.list_accounts(ctx, search=f"  {ids[3]} ")).rows[0].account.id
        == ids[3]
    )


@pytest.mark.parametrize("limit", [0, -1, console.MAX_PAGE + 1])
def test_page_size_is_bounded(database_url: str, limit: int) -> None:
    with pytest.raises(ValidationError):
        run(database_url, lambda ctx: console.list_accounts(ctx, limit=limit))
    with pytest.raises(ValidationError):
        run(database_url, lambda ctx: console.ledger_page(ctx, "nobody", limit=limit))


def test_search_text_is_bounded(database_url: str) -> None:
    with pytest.raises(ValidationError):
        run(database_url, lambda ctx: console.list_accounts(ctx, search="x" * (console.MAX_SEARCH + 1)))


def _usage(server: support.LiveServer, account: str, events: list[tuple[datetime, str]]) -> None:
    batch = [
        {
            "id": f"e{i}-{to_ms(at)}",
            "account_id": account,
            "model": "private",
            "provider": "acme",
            "input_tokens": 10,
            "output_tokens": 5,
            "cost_usd": cost,
            "timestamp": to_ms(at),
        }
        for i, (at, cost) in enumerate(events)
    ]
    with server.admin() as c:
        r = c.post("/v1/gateway/usage", json={"events": batch})
        assert r.status_code == 200 and r.json()["rejected"] == [], r.text


def test_month_to_date_spend_and_status(server: support.LiveServer, database_url: str) -> None:
    account = support.create_account(server, name="spender")
    support.grant(server, account, 1000)
    _usage(
        server,
        account,
        [
            (datetime(2026, 2, 28, 23, 59, tzinfo=UTC), "1.00"),  # last month: not counted
            (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), "2.50"),
            (datetime(2026, 3, 20, 15, 0, tzinfo=UTC), "0.000000001"),
        ],
    )
    row = run(database_url, lambda ctx: console.list_accounts(ctx, search=account)).rows[0]
    assert row.month_spend == 2_500_000_001
    month = support.query(
        database_url,
        "SELECT sum(cost) FROM usage_events WHERE account_id = :a AND occurred_at >= :s",
        a=account,
        s=datetime(2026, 3, 1) if "sqlite" in database_url else datetime(2026, 3, 1, tzinfo=UTC),
    )[0][0]
    assert row.month_spend == int(month)
    assert row.account.balance == 10 * 10**9 - 3_500_000_001 and row.status == "active"
    assert run(database_url, lambda ctx: console.account_row(ctx, account)) == row
    broke = support.create_account(server)
    _usage(server, broke, [(NOW - timedelta(hours=1), "0.01")])
    assert run(database_url, lambda ctx: console.account_row(ctx, broke)).status == "overdrawn"
    empty = support.create_account(server)
    assert run(database_url, lambda ctx: console.account_row(ctx, empty)).status == "no credit"
    with pytest.raises(NotFound):
        run(database_url, lambda ctx: console.account_row(ctx, "no-such-account"))


def test_ledger_pages_carry_running_balances(server: support.LiveServer, database_url: str) -> None:
    account = support.create_account(server)

    async def post(ctx: Context) -> None:
        for cents in (500, 125, 1):
            await grants.apply(ctx, grants.Grant(account, cents, reason="promo"))
        await grants.apply(ctx, grants.Adjustment(account, -300, reason="correction <b>"))
        await grants.apply(ctx, grants.Grant(account, 99))

    run(database_url, post)
    _usage(server, account, [(NOW - timedelta(days=1), "0.333333333")])
    entries: list[Any] = []
    before = None
    while True:
        page = run(
            database_url, lambda ctx, b=before: console.ledger_page(ctx, account, before_id=b, limit=2)
        )  # type: ignore[misc]
        assert len(page.entries) <= 2
        entries += page.entries
        if page.next_before is None:
            break
        before = page.next_before
    assert [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)
    assert len(entries) == 6
    running = 0
    for entry in reversed(entries):
        running += entry.amount
        assert entry.balance_after == running
    stored = support.query(database_url, "SELECT balance FROM accounts WHERE id = :a", a=account)[0][0]
    assert running == int(stored) == page.account.balance
    assert [(e.kind, e.amount, e.reason) for e in entries if e.kind == "adjustment"] == [
        ("adjustment", -300 * 10**7, "correction <b>")
    ]
    with pytest.raises(NotFound):
        run(database_url, lambda ctx: console.ledger_page(ctx, "no-such-account"))


def test_reconcile_status(database_url: str, server: support.LiveServer) -> None:
    support.create_account(server)
    status = run(database_url, console.reconcile_status)
    assert status.ok and status.problems == [] and status.accounts_with_problems == []
    count = support.query(database_url, "SELECT count(*) FROM accounts")[0][0]
    assert status.accounts_checked == int(count) and status.checked_at == NOW


def test_reconcile_status_names_a_broken_account(fresh_database_url: str) -> None:
    async def scenario(ctx: Context) -> console.ReconcileStatus:
        async with ctx.db.write() as conn:
            await accounts.create_account(conn, "good", name=None, mode="prepaid", now=NOW)
            await accounts.create_account(conn, "bad", name=None, mode="prepaid", now=NOW)
        await grants.apply(ctx, grants.Grant("bad", 100))
        return await console.reconcile_status(ctx)

    run(fresh_database_url, scenario)
    support.query(fresh_database_url, "UPDATE accounts SET balance = balance + 1 WHERE id = 'bad'")
    status = run(fresh_database_url, console.reconcile_status)
    assert not status.ok and status.accounts_with_problems == ["bad"] and status.accounts_checked == 2


def test_webhook_deliveries_with_attempts(fresh_database_url: str, sink: Sink) -> None:  # noqa: F811
    sink.statuses = [500]  # the first attempt fails, the retry succeeds

    async def scenario(ctx: Context) -> tuple[console.WebhookPage, console.WebhookPage, list[str]]:
        clock = ManualClock(NOW)
        ctx.clock = clock
        async with ctx.db.write() as conn:
            await accounts.create_account(conn, "acct", name=None, mode="prepaid", now=NOW)
            await accounts.create_account(conn, "other", name=None, mode="prepaid", now=NOW)
            await notify.create_endpoint(conn, sink.url, NOW)
            ids = [await notify.emit(conn, "acct", "topup.succeeded", {"n": i}, NOW) for i in range(3)]
        await jobs.run_once(ctx, ["deliver_webhooks"])
        clock.advance(hours=2)
        await jobs.run_once(ctx, ["deliver_webhooks"])
        async with ctx.db.write() as conn:  # another account's event is never listed
            await notify.emit(conn, "other", "topup.succeeded", {"n": 9}, clock())
        first = await console.webhook_page(ctx, "acct", limit=2)
        second = await console.webhook_page(ctx, "acct", before=first.next_before, limit=2)
        return first, second, ids

    first, second, ids = run(fresh_database_url, scenario)
    events = first.events + second.events
    assert second.next_before is None and len(first.events) == 2
    assert sorted(e.id for e in events) == sorted(ids)
    deliveries = [d for e in events for d in e.deliveries]
    assert len(deliveries) == 3 and all(d.status == "succeeded" for d in deliveries)
    log = [(a.attempt, a.status_code, a.succeeded) for d in deliveries for a in d.attempt_log]
    assert sorted(log) == [(1, 200, True), (1, 200, True), (1, 500, False), (2, 200, True)]
    retried = next(d for d in deliveries if d.attempts == 2)
    assert retried.url == sink.url and retried.next_attempt_at is None and retried.finished_at is not None
    with pytest.raises(NotFound):
        run(fresh_database_url, lambda ctx: console.webhook_page(ctx, "no-such-account"))


def test_a_postpaid_account_may_run_below_zero_to_its_limit(
    server: support.LiveServer, database_url: str
) -> None:
    account = support.create_account(server, mode="postpaid", postpaid_limit_cents=1000)
    _usage(server, account, [(NOW - timedelta(hours=1), "4.00")])
    row = run(database_url, lambda ctx: console.account_row(ctx, account))
    assert row.allowance == 10 * 10**9 and row.account.balance == -4 * 10**9
    assert row.available == 6 * 10**9 and row.status == "active"
    _usage(server, account, [(NOW - timedelta(hours=2), "6.50")])  # usage reports past the limit
    row = run(database_url, lambda ctx: console.account_row(ctx, account))
    assert row.available == -5 * 10**8 and row.status == "overdrawn"
