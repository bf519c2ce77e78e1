"""Usage history as it grows (docs/scaling.md, "Partitions and retention"), on both backends: an
id retried across a month boundary with a new timestamp is charged once; ids are forgotten
after the deduplication horizon; dropping old raw events (whole partitions on PostgreSQL)
keeps the rollups, the balances and a clean reconcile; the jobs create partitions ahead."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from creditgate.accounts.principal import OPERATOR
from creditgate.clock import ManualClock, to_ms
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.metering import retention
from creditgate.metering.models import usage_event_ids, usage_events, usage_rollups
from creditgate.money import cents
from creditgate.workflows import Context
from creditgate.workflows.reconcile import reconcile
from creditgate.workflows.usage import report_usage
from creditgate.workflows.usage_history import drop_old_raw_events, ensure_partitions, prune_event_ids
from tests import support


def _context(url: str, tmp_path: Path, clock: ManualClock, **settings: Any) -> Context:
    config = support.make_settings(url, tmp_path, **settings)
    return Context(settings=config, db=Database(config.database_url, pool_size=4), clock=clock)


def _run(ctx: Context, body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        try:
            await body()
        finally:
            await ctx.db.dispose()

    asyncio.run(main())


def _event(account: str, event_id: str, at: datetime, cost_cents: int = 100) -> dict[str, Any]:
    return {
        "id": event_id,
        "account_id": account,
        "model": "m",
        "input_tokens": 1,
        "output_tokens": 1,
        "cost_usd": f"{cost_cents // 100}.{cost_cents % 100:02d}",
        "timestamp": to_ms(at),
    }


async def _open(ctx: Context, account: str) -> None:
    async with ctx.db.write() as conn:
        await ledger.open_account(conn, account, name="h", mode="prepaid", now=ctx.clock())
        await ledger.post(conn, [ledger.Posting(account, "adjustment", cents(10_000))], ctx.clock())


async def _count(ctx: Context, table: Any, account: str) -> int:
    async with ctx.db.read() as conn:
        return int(
            await conn.scalar(select(func.count()).select_from(table).where(table.c.account_id == account))
        )


async def _balance(ctx: Context, account: str) -> int:
    async with ctx.db.read() as conn:
        return (await ledger.get_account(conn, account)).balance


async def _rows_in(ctx: Context, table: str) -> int:
    async with ctx.db.read() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")))


async def _partitions(ctx: Context) -> set[str]:
    async with ctx.db.read() as conn:
        return set((await retention.monthly_partitions(conn)).values())


def test_a_retry_across_a_month_boundary_with_a_new_timestamp_is_charged_once(
    fresh_database_url: str, tmp_path: Path
) -> None:
    clock = ManualClock(datetime(2026, 1, 31, 23, 59, 30, tzinfo=UTC))
    ctx = _context(fresh_database_url, tmp_path, clock)
    account = support.new_account_id()

    async def body() -> None:
        await _open(ctx, account)
        await ensure_partitions(ctx)  # January to March 2026 (PostgreSQL)
        if not ctx.db.is_sqlite:
            assert {
                "usage_events_p202601",
                "usage_events_p202602",
                "usage_events_p202603",
            } <= await _partitions(ctx)
        first = await report_usage(ctx, [_event(account, "e1", clock())], OPERATOR)
        assert (first.accepted, first.duplicates) == (1, 0)
        clock.advance(minutes=1)  # February: the client regenerated the timestamp
        again = await report_usage(
            ctx, [_event(account, "e1", clock()), _event(account, "e2", clock())], OPERATOR
        )
        assert (again.accepted, again.duplicates) == (1, 1)
        assert await _count(ctx, usage_events, account) == 2
        assert await _balance(ctx, account) == cents(10_000 - 200)
        assert (await reconcile(ctx))["ok"]

    _run(ctx, body)


def test_ids_are_forgotten_after_the_horizon(fresh_database_url: str, tmp_path: Path) -> None:
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    clock = ManualClock(start)
    ctx = _context(fresh_database_url, tmp_path, clock, dedupe_horizon_days=35)
    account = support.new_account_id()

    async def body() -> None:
        await _open(ctx, account)
        await report_usage(ctx, [_event(account, "old", start), _event(account, "old2", start)], OPERATOR)
        clock.advance(days=35, seconds=1)
        await report_usage(ctx, [_event(account, "new", clock())], OPERATOR)
        assert await prune_event_ids(ctx) == 2  # received more than 35 days ago
        assert await prune_event_ids(ctx) == 0
        async with ctx.db.read() as conn:
            ids = (
                await conn.execute(
                    select(usage_event_ids.c.event_id).where(usage_event_ids.c.account_id == account)
                )
            ).scalars()
            assert set(ids) == {"new"}
        # within the horizon: charged once, whatever the timestamp
        retried = await report_usage(ctx, [_event(account, "new", start)], OPERATOR)
        assert (retried.accepted, retried.duplicates) == (0, 1)
        # past it, a retry with the original timestamp still finds the stored event ...
        same = await report_usage(ctx, [_event(account, "old2", start)], OPERATOR)
        assert (same.accepted, same.duplicates) == (0, 1)
        # ... and one with a new timestamp is charged again (the documented limit)
        moved = await report_usage(ctx, [_event(account, "old", clock())], OPERATOR)
        assert (moved.accepted, moved.duplicates) == (1, 0)
        assert await _balance(ctx, account) == cents(10_000 - 400)
        assert (await reconcile(ctx))["ok"]

    _run(ctx, body)


def test_the_horizon_is_at_least_35_days() -> None:
    with pytest.raises(ValueError, match="dedupe_horizon_days"):
        Settings(dedupe_horizon_days=34)
    assert Settings().dedupe_horizon_days == 40 and Settings().raw_event_retention_months is None


MONTHS = [datetime(2025, 12, 10, tzinfo=UTC), datetime(2026, 1, 10, tzinfo=UTC),
          datetime(2026, 2, 10, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)]  # fmt: skip


async def _day_rollups(ctx: Context, account: str) -> dict[datetime, int]:
    r = usage_rollups.c
    async with ctx.db.read() as conn:
        rows = await conn.execute(
            select(r.bucket_start, r.cost).where(r.account_id == account, r.granularity == "day")
        )
        return {row.bucket_start: int(row.cost) for row in rows}


def test_retention_drops_old_raw_events_and_keeps_rollups_balances_and_reconcile(
    fresh_database_url: str, tmp_path: Path
) -> None:
    clock = ManualClock(datetime(2025, 12, 1, tzinfo=UTC))
    ctx = _context(fresh_database_url, tmp_path, clock, raw_event_retention_months=1)
    account = support.new_account_id()

    async def body() -> None:
        await _open(ctx, account)
        await ensure_partitions(ctx)  # December 2025 to February 2026
        clock.now = datetime(2026, 3, 15, tzinfo=UTC)
        await ensure_partitions(ctx)  # March to May
        for i, at in enumerate(MONTHS):
            await report_usage(ctx, [_event(account, f"e{i}", at, cost_cents=100 * (i + 1))], OPERATOR)
        rollups, balance = await _day_rollups(ctx, account), await _balance(ctx, account)
        assert balance == cents(10_000 - 1000) and len(rollups) == 4
        assert (await reconcile(ctx))["ok"]
        # keep March and February: December and January go (whole partitions on PostgreSQL)
        dropped = await drop_old_raw_events(ctx)
        assert dropped == 2
        assert await drop_old_raw_events(ctx) == 0  # at most once an hour
        if not ctx.db.is_sqlite:
            left = await _partitions(ctx)
            assert "usage_events_p202512" not in left and "usage_events_p202601" not in left
            assert "usage_events_p202602" in left
        assert await _count(ctx, usage_events, account) == 2
        assert await _day_rollups(ctx, account) == rollups
        assert await _balance(ctx, account) == balance
        report = await reconcile(ctx)
        assert report["ok"], report
        # a late event of a dropped month is stored (DEFAULT partition) and charged; reconcile
        # still holds, and the next pass drops it
        late = await report_usage(ctx, [_event(account, "late", MONTHS[0])], OPERATOR)
        assert late.accepted == 1
        assert (await reconcile(ctx))["ok"]
        clock.advance(hours=1)
        assert await drop_old_raw_events(ctx) == 1
        assert await _count(ctx, usage_events, account) == 2
        assert (await reconcile(ctx))["ok"]
        # and a forged event inside the kept months is still caught
        async with ctx.db.write() as conn:
            await conn.execute(
                usage_events.insert().values(
                    account_id=account, event_id="forged", occurred_at=MONTHS[3], provider="x", model="y",
                    input_tokens=0, output_tokens=0, cached_tokens=0, cost=cents(1), received_at=MONTHS[3],
                )
            )  # fmt: skip
        report = await reconcile(ctx)
        assert not report["ok"] and "usage debits since 2026-02-01" in report["problems"][0]["check"]

    _run(ctx, body)


def test_partitions_are_created_ahead_and_rows_move_out_of_the_default(
    fresh_database_url: str, tmp_path: Path
) -> None:
    if not fresh_database_url.startswith("postgresql"):
        pytest.skip("partitions are PostgreSQL's")
    clock = ManualClock(datetime(2031, 5, 20, tzinfo=UTC))
    ctx = _context(fresh_database_url, tmp_path, clock)
    account = support.new_account_id()

    async def body() -> None:
        await _open(ctx, account)
        # far ahead of every partition: the DEFAULT partition takes it
        await report_usage(ctx, [_event(account, "ahead", datetime(2031, 6, 3, tzinfo=UTC))], OPERATOR)
        assert await _rows_in(ctx, "usage_events_default") == 1
        assert await ensure_partitions(ctx) == 3
        assert await ensure_partitions(ctx) == 0
        assert await _rows_in(ctx, "usage_events_default") == 0
        assert await _rows_in(ctx, "usage_events_p203106") == 1
        assert await _count(ctx, usage_events, account) == 1
        assert (await reconcile(ctx))["ok"]

    _run(ctx, body)
