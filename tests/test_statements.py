"""Monthly statements (the close_periods job) on SQLite and PostgreSQL: one per account and
month, after the grace period; lines from the rollups; credits applied; postpaid amount due;
late usage carried into the next statement; listed in invoice-history (type=all) with a PDF."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditgate import jobs
from creditgate.db import Database
from tests import support
from tests.autotopup_support import World, events, world
from tests.cloudflare_support import billing, ms, pdf_text

JULY_1 = "2030-07-01"


@pytest.fixture
def w(fresh_database_url: str, tmp_path: Path) -> Iterator[World]:
    with world(fresh_database_url, tmp_path) as live:
        yield live


def _report(w: World, account: str, events_: list[dict[str, Any]]) -> None:
    token = support.create_token(w.server, account, "gateway")
    batch = [{"account_id": account, "input_tokens": 1000, "output_tokens": 100, **e} for e in events_]
    with w.server.client(token) as c:
        r = c.post("/v1/gateway/usage", json={"events": batch})
        assert r.status_code == 200 and r.json()["accepted"] == len(batch), r.text


def _statements(w: World, account: str) -> list[Any]:
    token = support.create_token(w.server, account, "read")
    page = billing(w.server, token).invoice_history(account_id=account, type="all")
    return [i for i in page.invoices if i.invoice_origin == "statement"]


def _to_july_first(w: World, minutes: int = 0) -> None:
    w.advance(days=15, hours=12, minutes=minutes)  # from 2030-06-15 12:00


def test_a_finished_month_becomes_one_statement_after_the_grace_period(w: World) -> None:
    account = support.create_account(w.server)
    support.grant(w.server, account, 10_000)
    _report(
        w,
        account,
        [
            {"id": "a", "model": "gpt-4o", "provider": "openai", "cost_usd": "1.25"},
            {"id": "b", "model": "gpt-4o", "provider": "openai", "cost_usd": "0.75"},
            {"id": "c", "model": "claude-3-5-sonnet", "provider": "anthropic", "cost_usd": "0.005"},
        ],
    )
    _to_july_first(w, minutes=59)
    assert w.run_jobs("close_periods")["close_periods"] == 0  # still inside the grace hour
    w.advance(minutes=1)
    assert w.run_jobs("close_periods")["close_periods"] == 1
    assert w.run_jobs("close_periods")["close_periods"] == 0  # exactly once

    [statement] = _statements(w, account)
    assert statement.status == "paid" and statement.amount_due == 0 and statement.created_by == "system"
    assert "2030-06" in statement.description and "$2.005" in statement.description
    token = support.create_token(w.server, account, "read")
    b = billing(w.server, token)
    assert b.invoice_history(account_id=account, type="auto").invoices == []
    assert b.invoice_history(account_id=account, type="manual").invoices == []
    text = pdf_text(statement.invoice_pdf)
    assert "openai/gpt-4o: 2 requests" in text and "anthropic/claude-3-5-sonnet: 1 request" in text
    assert "$2.01" in text and "Paid from prepaid credit" in text and "-$2.01" in text
    [event] = events(w, account, "invoice.finalized")
    assert event["payload"]["data"]["period"] == "2030-06"
    assert event["payload"]["data"]["usage_cents"] == 201


def test_two_runners_close_each_month_once(w: World) -> None:
    accounts = [support.create_account(w.server) for _ in range(5)]
    for i, account in enumerate(accounts):
        _report(w, account, [{"id": f"e{i}", "model": "gpt-4o", "provider": "openai", "cost_usd": "0.10"}])
    w.advance(days=50)  # 2030-08-04: June and July are finished

    async def two() -> list[dict[str, int]]:
        dbs = [Database(w.url, pool_size=4) for _ in range(2)]
        try:
            return list(
                await asyncio.gather(
                    *(jobs.run_once(support.job_context(db, w.clock), ["close_periods"]) for db in dbs)
                )
            )
        finally:
            for db in dbs:
                await db.dispose()

    results = asyncio.run(two())
    assert sum(r["close_periods"] for r in results) == 10  # 5 accounts x (June, July)
    for account in accounts:
        [june] = _statements(w, account)  # July had no usage: recorded, but no invoice
        assert june.amount_due == 0


def test_postpaid_statement_asks_for_usage_not_covered_by_credit(w: World) -> None:
    account = support.create_account(w.server, mode="postpaid", postpaid_limit_cents=100_000)
    support.grant(w.server, account, 300)
    _report(w, account, [{"id": "p1", "model": "gpt-4o", "provider": "openai", "cost_usd": "5.00"}])
    _to_july_first(w, minutes=60)
    w.run_jobs("close_periods")
    [june] = _statements(w, account)
    assert (june.status, june.amount_due, june.amount_paid, june.amount_remaining) == ("open", 200, 0, 200)
    text = pdf_text(june.invoice_pdf)
    assert "$5.00" in text and "-$3.00" in text and "$2.00" in text

    # July: more usage, June still unpaid. July asks only for July's usage.
    _report(w, account, [{"id": "p2", "model": "gpt-4o", "provider": "openai", "cost_usd": "1.00"}])
    w.advance(days=31)
    w.run_jobs("close_periods")
    july, june_again = _statements(w, account)
    assert july.amount_due == 100 and june_again.id == june.id
    with w.server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/invoices/{june.id}/mark-paid")
        assert r.status_code == 200, r.text
    paid = next(s for s in _statements(w, account) if s.id == june.id)
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 200, 0)


def test_usage_reported_after_its_month_closed_goes_on_the_next_statement(w: World) -> None:
    account = support.create_account(w.server)
    support.grant(w.server, account, 10_000)
    _report(w, account, [{"id": "j1", "model": "gpt-4o", "provider": "openai", "cost_usd": "1.00"}])
    _to_july_first(w, minutes=120)
    w.run_jobs("close_periods")
    late_ms = ms(w.clock()) - 3 * 24 * 3600 * 1000  # 2030-06-28: a month already closed
    _report(
        w,
        account,
        [
            {"id": "late", "model": "gpt-4o", "provider": "openai", "cost_usd": "0.40", "timestamp": late_ms},
            {"id": "j2", "model": "gpt-4o", "provider": "openai", "cost_usd": "0.60"},
        ],
    )
    w.advance(days=31)
    w.run_jobs("close_periods")
    july, june = _statements(w, account)
    assert "$1.00 of usage" in june.description and "$1.00 of usage" in july.description
    assert "reported after they closed" in pdf_text(july.invoice_pdf)
