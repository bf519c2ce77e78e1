"""Which stored event a settle charges: an event stored by the settle carries its hold; one
reported before (usage API) is linked to the hold and charged once; an event id can close
one hold only, in one group or across groups. Both apply modes, both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from creditgate.accounts.principal import OPERATOR
from creditgate.billing.reconcile import reconcile_report
from creditgate.db import Database
from creditgate.errors import Conflict
from creditgate.ledger import service as ledger
from creditgate.metering.models import usage_events
from creditgate.money import cents
from creditgate.workflows import Context, holds
from creditgate.workflows import authorize as authorizing
from creditgate.workflows.apply_usage import apply_all
from creditgate.workflows.usage import report_usage
from tests import support


@pytest.fixture(params=["inline", "deferred"])
def ctx(request: pytest.FixtureRequest, fresh_database_url: str, tmp_path: Path) -> Context:
    settings = support.make_settings(fresh_database_url, tmp_path, usage_apply=request.param)
    return Context(settings=settings, db=Database(settings.database_url, pool_size=6))


async def _hold(ctx: Context, account: str, request_id: str) -> str:
    ask = {"account_id": account, "request_id": request_id, "model": "m", "estimated_cost_usd": "1.00"}
    decision = await authorizing.authorize(ctx, ask, OPERATOR)
    assert decision.allowed and decision.hold is not None
    return decision.hold.id


async def _hold_of_event(ctx: Context, account: str, event_id: str) -> Any:
    async with ctx.db.read() as conn:
        c = usage_events.c
        return await conn.scalar(select(c.hold_id).where(c.account_id == account, c.event_id == event_id))


def _run(ctx: Context, body: Any) -> None:
    async def main() -> None:
        try:
            account = support.new_account_id()
            async with ctx.db.write() as conn:
                await ledger.open_account(conn, account, name="s", mode="prepaid", now=ctx.clock())
                await ledger.post(conn, [ledger.Posting(account, "adjustment", cents(1000))], ctx.clock())
            await body(account)
            await apply_all(ctx)
            async with ctx.db.read() as conn:
                assert (await ledger.get_account(conn, account)).held == 0
                assert (await reconcile_report(conn))["ok"]
        finally:
            await ctx.db.dispose()

    asyncio.run(main())


def test_an_event_stored_by_a_settle_carries_its_hold(ctx: Context) -> None:
    async def body(account: str) -> None:
        hold = await _hold(ctx, account, "r1")
        settled = await holds.settle(ctx, hold, {"id": "ev-1", "cost_usd": "0.40"}, OPERATOR)
        assert settled.hold.captured == cents(40)
        assert await _hold_of_event(ctx, account, "ev-1") == hold
        async with ctx.db.read() as conn:
            assert (await ledger.get_account(conn, account)).balance == cents(960)

    _run(ctx, body)


def test_an_event_reported_before_is_linked_and_charged_once(ctx: Context) -> None:
    async def body(account: str) -> None:
        event = {
            "id": "ev-2",
            "account_id": account,
            "model": "m",
            "input_tokens": 1,
            "output_tokens": 1,
            "cost_usd": "0.25",
        }
        assert (await report_usage(ctx, [event], OPERATOR)).accepted == 1
        hold = await _hold(ctx, account, "r2")
        settled = await holds.settle(ctx, hold, {"id": "ev-2", "cost_usd": "0.25"}, OPERATOR)
        assert (settled.hold.captured, settled.replayed) == (cents(25), False)
        assert await _hold_of_event(ctx, account, "ev-2") == hold
        async with ctx.db.read() as conn:
            assert (await ledger.get_account(conn, account)).balance == cents(975)  # once

    _run(ctx, body)


def test_one_event_id_closes_one_hold_in_one_group_or_across_groups(ctx: Context) -> None:
    async def body(account: str) -> None:
        first, second, third = [await _hold(ctx, account, f"r{n}") for n in range(3)]
        answers = await asyncio.gather(
            holds.settle(ctx, first, {"id": "shared", "cost_usd": "0.10"}, OPERATOR),
            holds.settle(ctx, second, {"id": "shared", "cost_usd": "0.10"}, OPERATOR),
            return_exceptions=True,
        )
        won = [a for a in answers if not isinstance(a, BaseException)]
        lost = [a for a in answers if isinstance(a, BaseException)]
        assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], Conflict), answers
        with pytest.raises(Conflict):
            await holds.settle(ctx, third, {"id": "shared", "cost_usd": "0.10"}, OPERATOR)
        assert await _hold_of_event(ctx, account, "shared") == won[0].hold.id
        for loser in (second if won[0].hold.id == first else first, third):
            await holds.void(ctx, loser, OPERATOR)
        async with ctx.db.read() as conn:
            assert (await ledger.get_account(conn, account)).balance == cents(990)

    _run(ctx, body)
