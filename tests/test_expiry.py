"""Grant expiry: the unused remainder of an expired grant is debited exactly once, with spend
drawing from the soonest-expiring credit first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from creditgate import jobs
from creditgate.billing.reconcile import reconcile_report
from creditgate.clock import ManualClock
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.ledger.expiry import unused_remainders
from creditgate.ledger.service import Posting
from creditgate.money import cents
from tests import support

START = datetime(2026, 5, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _run(url: str, body: Callable[[Database, ManualClock], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        db = Database(normalize_database_url(url), pool_size=4)
        try:
            return await body(db, ManualClock(START))
        finally:
            await db.dispose()

    return asyncio.run(main())


async def _open(db: Database, clock: ManualClock) -> str:
    account = support.new_account_id()
    async with db.write() as conn:
        await ledger.open_account(conn, account, name="t", mode="prepaid", now=clock())
    return account


async def _post(
    db: Database,
    clock: ManualClock,
    account: str,
    kind: str,
    amount_cents: int,
    expires: datetime | None = None,
) -> int:
    async with db.write() as conn:
        await ledger.post(conn, [Posting(account, kind, cents(amount_cents), expires_at=expires)], clock())
        return int((await ledger.list_entries(conn, account, limit=1))[0].id)


async def _state(db: Database, account: str) -> tuple[int, list[tuple[str, int, str | None]]]:
    async with db.read() as conn:
        row = await ledger.get_account(conn, account)
        entries = await ledger.list_entries(conn, account, limit=1000)
        report = await reconcile_report(conn)
    assert report["ok"], report
    return row.balance, [(e.kind, e.amount, e.ref) for e in reversed(entries)]


def test_unused_part_expires_once(fresh_database_url: str) -> None:
    async def body(db: Database, clock: ManualClock) -> None:
        account = await _open(db, clock)
        grant = await _post(db, clock, account, "grant", 1000, START + DAY)
        clock.advance(hours=1)
        await _post(db, clock, account, "adjustment", -300)
        assert await jobs.expire_grants(db, clock) == 0  # not expired yet
        clock.advance(days=2)
        assert await jobs.expire_grants(db, clock) == 1
        assert await jobs.expire_grants(db, clock) == 0
        balance, entries = await _state(db, account)
        assert balance == 0
        assert entries[-1] == ("expiry", -cents(700), f"expiry:{grant}")

    _run(fresh_database_url, body)


def test_spend_draws_from_the_soonest_expiring_credit_first(fresh_database_url: str) -> None:
    async def body(db: Database, clock: ManualClock) -> None:
        account = await _open(db, clock)
        await _post(db, clock, account, "adjustment", 1000)  # never expires
        late = await _post(db, clock, account, "grant", 500, START + 5 * DAY)
        soon = await _post(db, clock, account, "grant", 500, START + 2 * DAY)
        clock.advance(hours=1)
        await _post(db, clock, account, "adjustment", -600)  # all of `soon`, 100 of `late`
        clock.advance(days=3)
        assert await jobs.expire_grants(db, clock) == 1
        balance, entries = await _state(db, account)
        assert entries[-1] == ("expiry", 0, f"expiry:{soon}")  # fully used: recorded as 0
        assert balance == cents(1400)
        clock.advance(days=3)
        assert await jobs.expire_grants(db, clock) == 1
        balance, entries = await _state(db, account)
        assert entries[-1] == ("expiry", -cents(400), f"expiry:{late}")
        assert balance == cents(1000)

    _run(fresh_database_url, body)


def test_spend_after_expiry_does_not_use_the_expired_grant(fresh_database_url: str) -> None:
    async def body(db: Database, clock: ManualClock) -> None:
        account = await _open(db, clock)
        grant = await _post(db, clock, account, "grant", 500, START + DAY)
        await _post(db, clock, account, "adjustment", 1000)
        clock.advance(days=2)  # expired, but the job has not run yet
        await _post(db, clock, account, "adjustment", -300)
        clock.advance(days=1)
        assert await jobs.expire_grants(db, clock) == 1
        balance, entries = await _state(db, account)
        assert entries[-1] == ("expiry", -cents(500), f"expiry:{grant}")
        assert balance == cents(700)

    _run(fresh_database_url, body)


def test_a_grant_first_pays_off_debt(fresh_database_url: str) -> None:
    async def body(db: Database, clock: ManualClock) -> None:
        account = await _open(db, clock)
        await _post(db, clock, account, "adjustment", -200)
        grant = await _post(db, clock, account, "grant", 500, START + DAY)
        clock.advance(days=2)
        assert await jobs.expire_grants(db, clock) == 1
        balance, entries = await _state(db, account)
        assert entries[-1] == ("expiry", -cents(300), f"expiry:{grant}")
        assert balance == 0

    _run(fresh_database_url, body)


def test_two_runners_post_each_expiry_once(fresh_database_url: str) -> None:
    async def body(db: Database, clock: ManualClock) -> None:
        accounts = [await _open(db, clock) for _ in range(6)]
        for i, account in enumerate(accounts):
            await _post(db, clock, account, "grant", 100 + i, START + DAY)
            await _post(db, clock, account, "grant", 50, START + 2 * DAY)
            await _post(db, clock, account, "adjustment", -(i * 20 + 1))
        clock.advance(days=3)
        other = Database(db.url, pool_size=4)
        try:
            counts = await asyncio.gather(
                jobs.expire_grants(db, clock), jobs.expire_grants(other, clock), jobs.expire_grants(db, clock)
            )
        finally:
            await other.dispose()
        assert sum(counts) == 12
        for i, account in enumerate(accounts):
            balance, entries = await _state(db, account)
            assert balance == 0
            assert [k for k, _, _ in entries].count("expiry") == 2

    _run(fresh_database_url, body)


def test_run_once_registers_the_job(fresh_database_url: str) -> None:
    async def body(db: Database, clock: ManualClock) -> None:
        account = await _open(db, clock)
        await _post(db, clock, account, "grant", 100, START + DAY)
        clock.advance(days=2)
        assert (await jobs.run_once(support.job_context(db, clock), ["expire_grants"])) == {
            "expire_grants": 1
        }

    _run(fresh_database_url, body)


class _E:
    def __init__(
        self,
        id: int,
        kind: str,
        amount: int,
        at: datetime,
        expires_at: datetime | None = None,
        ref: str | None = None,
    ) -> None:
        self.id, self.kind, self.amount, self.created_at = id, kind, amount, at
        self.expires_at, self.ref = expires_at, ref


def test_replay_rules() -> None:
    t = START
    entries = [
        _E(1, "grant", 100, t, t + 10 * DAY),
        _E(2, "grant", 100, t, t + 5 * DAY),
        _E(3, "topup", 100, t),
        _E(4, "usage", -150, t + DAY),  # 100 from #2, 50 from #1
        _E(5, "adjustment", -10, t + 6 * DAY),  # #2 closed at day 5 -> 10 from #1
        _E(6, "expiry", 0, t + 7 * DAY, ref="expiry:2"),  # record of #2: not spend
        _E(7, "refund", 30, t + 8 * DAY),
        _E(8, "usage", -500, t + 9 * DAY),  # 40 from #1, 100 from #3, 30 from #7, 330 debt
        _E(9, "grant", 400, t + 9 * DAY, t + 20 * DAY),  # pays the 330 debt, 70 left
    ]
    assert unused_remainders(entries, [1, 2, 9, 3, 42]) == {1: 0, 2: 0, 9: 70, 3: 0}
    assert unused_remainders(entries[:4], [1, 2]) == {1: 50, 2: 0}
    assert unused_remainders(entries[:5], [1]) == {1: 40}


def test_worker_command_expires_due_grants(fresh_database_url: str, tmp_path: Any) -> None:
    import json

    async def body(db: Database, clock: ManualClock) -> str:
        account = await _open(db, clock)
        await _post(db, clock, account, "grant", 250, START + DAY)  # long expired by wall-clock time
        return account

    account = _run(fresh_database_url, body)
    out = json.loads(support.cli(fresh_database_url, "worker", "--once", data_dir=tmp_path).stdout)
    assert out["expire_grants"] == 1
    shown = json.loads(support.cli(fresh_database_url, "accounts", "show", account, data_dir=tmp_path).stdout)
    assert shown["balance_cents"] == 0 and shown["recent_entries"][0]["kind"] == "expiry"
    out = json.loads(support.cli(fresh_database_url, "worker", "--once", data_dir=tmp_path).stdout)
    assert out["expire_grants"] == 0
