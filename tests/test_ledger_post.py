"""`ledger.post` reports the balances it leaves and never changes the caller's `locked` map;
billing's rows leave their repositories typed."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

from creditgate.billing import autotopup_config, cards, invoices, numbering
from creditgate.billing.parties import Seller
from creditgate.billing.rows import TopupConfig
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.ledger.rows import Account, Entry, Posted
from creditgate.money import cents
from tests import support

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_post_returns_balances_and_leaves_locked_alone(database_url: str) -> None:
    a, b = support.new_account_id(), support.new_account_id()

    async def main() -> tuple[dict[str, int], dict[str, int], Posted, Posted]:
        db = Database(normalize_database_url(database_url), pool_size=2)
        try:
            async with db.write() as conn:
                for account in (a, b):
                    await ledger.open_account(conn, account, name=account, mode="prepaid", now=NOW)
            async with db.write() as conn:
                locked = await ledger.lock(conn, [a, b])
                before = dict(locked)
                postings = [
                    ledger.Posting(a, "grant", cents(500), ref="g:1"),
                    ledger.Posting(b, "grant", cents(200)),
                    ledger.Posting(a, "adjustment", -cents(120)),  # not usage: reconcile ties usage to events
                ]
                first = await ledger.post(conn, postings, NOW, locked=locked)
                after_first = dict(locked)
            async with db.write() as conn:  # the same ref again: nothing new, balance unchanged
                again = await ledger.post(conn, [ledger.Posting(a, "grant", cents(500), ref="g:1")], NOW)
            return before, after_first, first, again
        finally:
            await db.dispose()

    before, after_first, first, again = asyncio.run(main())
    assert before == after_first == {a: 0, b: 0}
    assert first.applied == [True, True, True] and first.new_count == 3
    assert first.balances == {a: cents(380), b: cents(200)}
    assert again.applied == [False] and again.new_count == 0
    assert again.balances == {a: cents(380)}


def test_reads_are_typed_rows(database_url: str) -> None:
    account = support.new_account_id()

    async def main() -> tuple[Account, list[Entry], TopupConfig, int, str]:
        db = Database(normalize_database_url(database_url), pool_size=2)
        try:
            async with db.write() as conn:
                await ledger.open_account(conn, account, name="t", mode="postpaid", now=NOW)
                await ledger.post(conn, [ledger.Posting(account, "grant", cents(7))], NOW)
                invoice = await invoices.issue_invoice(
                    conn,
                    account,
                    origin="manual",
                    status="open",
                    amount_due=1500,
                    description="d",
                    now=NOW,
                    seller=Seller("s"),
                )
            async with db.read() as conn:
                return (
                    await ledger.get_account(conn, account),
                    await ledger.list_entries(conn, account),
                    await autotopup_config.get_topup_config(conn, account),
                    len(await cards.list_cards(conn, account)),
                    (await invoices.get_invoice(conn, invoice.id)).number,
                )
        finally:
            await db.dispose()

    account_row, entries, config, saved, number = asyncio.run(main())
    assert isinstance(account_row, Account)
    assert account_row.balance == cents(7) and account_row.mode == "postpaid"
    assert [dataclasses.astuple(e)[2:5] for e in entries] == [("grant", cents(7), cents(7))]
    assert config == TopupConfig() and saved == 0
    assert number == numbering.format_number(account, 1)
