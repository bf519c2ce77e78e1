"""Property: any sequence of authorize / settle / void / expire (with time passing) keeps
accounts.held equal to the sum of open holds, keeps available credit >= -(recorded overruns),
keeps the running window sum equal to its buckets, and keeps window spend + held within the
limit plus recorded overruns. Runs against the database on both backends."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from creditgate.accounts import service as accounts
from creditgate.accounts.principal import OPERATOR
from creditgate.clock import ManualClock
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.errors import Conflict
from creditgate.ledger import service as ledger
from creditgate.limits import config as limit_config
from creditgate.limits import service as limits
from creditgate.limits.models import limit_state, spend_buckets
from creditgate.metering import authorize as gate
from creditgate.metering import settle as settling
from creditgate.metering.catalog import PriceCatalog
from creditgate.money import UNITS_PER_CENT
from tests import support

CENT = UNITS_PER_CENT
ops = st.one_of(
    st.tuples(st.just("authorize"), st.integers(0, 4), st.integers(0, 40)),  # request no., cents
    st.tuples(st.just("settle"), st.integers(0, 4), st.integers(0, 60)),  # request no., cents
    st.tuples(st.just("void"), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("wait"), st.sampled_from([1, 59, 300, 601, 3600, 86400, 7 * 86400]), st.just(0)),
    st.tuples(st.just("expire"), st.sampled_from([0, 601]), st.just(0)),  # seconds to pass first
)
limits_st = st.one_of(
    st.none(),
    st.tuples(
        st.integers(1, 150),
        st.sampled_from(["daily", "weekly", "monthly"]),
        st.sampled_from(["fixed", "sliding"]),
    ),
)


class World:
    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.db = Database(normalize_database_url(url), pool_size=2)
        self.catalog = PriceCatalog()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()


@pytest.fixture(scope="module")
def world(database_url: str) -> Any:
    w = World(database_url)
    yield w
    w.close()


async def _check(world: World, account: str, limit: Any, now: datetime) -> None:
    async with world.db.write() as conn:
        row = await ledger.get_account(conn, account)
        open_sum, overruns = await limits.hold_totals(conn, account)
        assert row.held == open_sum
        assert row.balance - row.held >= -overruns
        spend = await limits.window_spend(conn, account, now)
        state = (await conn.execute(select(limit_state).where(limit_state.c.account_id == account))).first()
        if state is not None:
            buckets = (
                await conn.execute(
                    select(func.coalesce(func.sum(spend_buckets.c.amount), 0)).where(
                        spend_buckets.c.account_id == account,
                        spend_buckets.c.bucket_start >= state.window_start,
                    )
                )
            ).scalar_one()
            assert state.window_spend == buckets
        if limit is not None:
            assert spend is not None and spend + row.held <= limit[0] * CENT + overruns


async def _play(world: World, steps: list[tuple[str, int, int]], limit: Any, balance: int) -> None:
    clock = ManualClock(datetime(2027, 1, 4, 10, 0, tzinfo=UTC))
    account = support.new_account_id()
    holds: dict[int, str] = {}
    async with world.db.write() as conn:
        await accounts.create_account(conn, account, name=None, mode="prepaid", now=clock())
        if balance:
            await ledger.post(conn, [ledger.Posting(account, "grant", balance * CENT)], clock())
        if limit is not None:
            await limit_config.set_limit(
                conn, account, amount=limit[0] * CENT, duration=limit[1], strategy=limit[2], now=clock()
            )
    for op, n, amount in steps:
        async with world.db.write() as conn:
            if op == "authorize":
                body = {
                    "account_id": account,
                    "request_id": f"r{n}",
                    "model": "m",
                    "estimated_cost_usd": f"{amount / 100:.2f}",
                }
                decision = await gate.authorize(conn, body, OPERATOR, world.catalog, clock(), ttl_seconds=600)
                if decision.allowed and decision.hold is not None:
                    holds[n] = decision.hold.id
            elif op == "settle" and n in holds:
                with contextlib.suppress(Conflict):  # the hold was voided
                    await settling.settle(
                        conn, holds[n], {"cost_usd": f"{amount / 100:.2f}"}, OPERATOR, world.catalog, clock()
                    )
            elif op == "void" and n in holds:
                with contextlib.suppress(Conflict):  # the hold was settled
                    await limits.void(conn, holds[n], OPERATOR, clock())
            elif op == "wait":
                clock.advance(seconds=n)
            elif op == "expire":
                clock.advance(seconds=n)
                await limits.expire(conn, clock())
        await _check(world, account, limit, clock())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(ops, max_size=30), limit=limits_st, balance=st.integers(0, 120))
def test_holds_and_windows_stay_consistent(world: World, steps: list[Any], limit: Any, balance: int) -> None:
    world.run(_play(world, steps, limit, balance))


def test_replaying_after_expiry_keeps_the_hold(world: World) -> None:
    """A granted request_id stays granted (same hold) even after the hold expired."""
    world.run(
        _play(world, [("authorize", 1, 5), ("wait", 601, 0), ("expire", 0, 0), ("authorize", 1, 5)], None, 10)
    )


def test_late_settle_after_the_room_was_reused(world: World) -> None:
    """An expired hold's room is given to another request; the late settle is all overrun."""
    steps = [
        ("authorize", 1, 10),
        ("wait", 601, 0),
        ("expire", 0, 0),
        ("authorize", 2, 10),
        ("settle", 1, 10),
    ]
    world.run(_play(world, steps, (20, "daily", "sliding"), 10))
