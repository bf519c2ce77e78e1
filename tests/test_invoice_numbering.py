"""Gap-free invoice numbers on SQLite and PostgreSQL: concurrent issuers of one series get
consecutive, unique numbers; a rolled-back issuer gives its number back; the counter row is
locked until the issuing transaction ends; concurrent top-ups number an account's invoices
0001, 0002, ... with no gap; an existing database carries each account's series on."""

from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from creditgate.billing import numbering
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.db.migrate import upgrade
from tests import support
from tests.cloudflare_support import billing, funded_account

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class _Rollback(Exception):
    pass


def _db(url: str) -> Database:
    return Database(normalize_database_url(url), pool_size=12)


def test_concurrent_issuers_get_consecutive_numbers_and_rollbacks_leave_no_gap(
    fresh_database_url: str,
) -> None:
    series = "seller:test"
    issuers = 40

    async def issue(db: Database, i: int) -> int | None:
        try:
            async with db.write() as conn:
                number = await numbering.next_number(conn, series)
                if i % 4 == 0:
                    raise _Rollback  # e.g. the invoice insert failed: the number goes back
                return number
        except _Rollback:
            return None

    async def main() -> tuple[list[int | None], int]:
        db = _db(fresh_database_url)
        try:
            taken = list(await asyncio.gather(*(issue(db, i) for i in range(issuers))))
            async with db.write() as conn:
                following = await numbering.next_number(conn, series)
            return taken, following
        finally:
            await db.dispose()

    taken, following = asyncio.run(main())
    committed = sorted(n for n in taken if n is not None)
    assert len(committed) == issuers - issuers // 4
    assert committed == list(range(1, len(committed) + 1)), "unique and consecutive, no gap"
    assert following == len(committed) + 1


def test_the_counter_row_stays_locked_until_the_issuer_ends(backend: str, fresh_database_url: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serializes writers in-process; the row lock is PostgreSQL's")
    series = "lock-test"

    async def main() -> int:
        db = _db(fresh_database_url)
        try:
            async with db.write() as conn:
                assert await numbering.next_number(conn, series) == 1
            try:
                async with db.write() as first:
                    assert await numbering.next_number(first, series) == 2
                    with pytest.raises(DBAPIError, match="lock"):
                        async with db.write() as second:  # cannot take the row while `first` holds it
                            await second.execute(text("SET LOCAL lock_timeout = '200ms'"))
                            await numbering.next_number(second, series)
                    raise _Rollback
            except _Rollback:
                pass
            async with db.write() as conn:
                return await numbering.next_number(conn, series)
        finally:
            await db.dispose()

    assert asyncio.run(main()) == 2, "the rolled-back number 2 is issued again"


def test_concurrent_topups_number_the_accounts_invoices_without_gaps(server: support.LiveServer) -> None:
    accounts = [funded_account(server) for _ in range(3)]
    per_account = 4
    jobs = [(a, t, 1000 + 100 * i) for a, t in accounts for i in range(per_account)]

    def topup(job: tuple[str, str, int]) -> str:
        account, token, amount = job
        return str(billing(server, token).topup.create(account_id=account, amount=amount).payment_intent_id)

    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(topup, jobs))
    for account, token in accounts:
        numbers = [i.number for i in billing(server, token).invoice_history(account_id=account).invoices]
        prefix = numbering.format_number(account, 1)[:-4]
        assert sorted(numbers) == [f"{prefix}{n:04d}" for n in range(1, per_account + 1)]


def test_an_existing_database_carries_each_series_on(backend: str, tmp_path: Path) -> None:
    """Invoices issued before the counters existed (numbered count + 1): the migration starts
    each account's counter at its count, so the next number follows on."""
    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else _pg(backend)
    account = support.new_account_id()

    async def main() -> str:
        db = _db(url)
        try:
            await upgrade(db, "0007_merge_heads")
            async with db.write() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO accounts (id, name, currency, mode, credit_limit, balance, held, "
                        "created_at) VALUES (:a, 'old', 'usd', 'prepaid', 0, 0, 0, :t)"
                    ),
                    {"a": account, "t": T0},
                )
                for seq in (1, 2):
                    await conn.execute(
                        text(
                            "INSERT INTO invoices (id, account_id, number, status, origin, currency, "
                            "amount_due, amount_paid, description, attempt_count, pdf_key, created_at) "
                            "VALUES (:id, :a, :n, 'paid', 'manual', 'usd', 100, 100, NULL, 1, 'k', :t)"
                        ),
                        {
                            "id": f"in_old{seq}",
                            "a": account,
                            "n": numbering.format_number(account, seq),
                            "t": T0,
                        },
                    )
            await upgrade(db)
            async with db.write() as conn:
                return await numbering.next_invoice_number(conn, account)
        finally:
            await db.dispose()

    try:
        assert asyncio.run(main()) == numbering.format_number(account, 3)
    finally:
        if backend == "postgresql":
            support.drop_pg_database(url)


def _pg(backend: str) -> str:
    support.pg_or_skip()
    return support.create_pg_database()
