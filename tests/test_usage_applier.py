"""The deferred usage applier: a usage answer is visible in every balance read and in authorize
at once, the applier posts it exactly once (concurrent appliers, a failure between its
statements, a process killed mid-apply), and a random interleaving of ingest, apply and
authorize never overspends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from creditgate.accounts.principal import OPERATOR
from creditgate.billing.reconcile import reconcile_report
from creditgate.clock import ManualClock
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.ledger.models import usage_pending
from creditgate.limits import config as limit_config
from creditgate.limits import service as limits
from creditgate.metering import repository as metering_repo
from creditgate.metering import service as metering
from creditgate.metering.models import usage_events, usage_rollups
from creditgate.money import cents
from creditgate.workflows import Context, apply_usage, holds
from creditgate.workflows import authorize as authorizing
from creditgate.workflows.apply_usage import apply_all, apply_once
from creditgate.workflows.usage import report_usage
from tests import support

START = datetime(2026, 6, 1, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


def _event(account: str, event_id: str, cost_cents: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "account_id": account,
        "model": "m",
        "input_tokens": 1,
        "output_tokens": 1,
        "cost_usd": f"{cost_cents // 100}.{cost_cents % 100:02d}",
    }


def _context(url: str, tmp_path: Path, clock: ManualClock | None = None) -> Context:
    settings = support.make_settings(url, tmp_path, usage_apply="deferred")
    ctx = Context(settings=settings, db=Database(settings.database_url, pool_size=6))
    if clock is not None:
        ctx.clock = clock
    return ctx


async def _open(ctx: Context, accounts: list[str], usd_cents: int) -> None:
    async with ctx.db.write() as conn:
        for account in accounts:
            await ledger.open_account(conn, account, name="u", mode="prepaid", now=ctx.clock())
            await ledger.post(conn, [ledger.Posting(account, "adjustment", cents(usd_cents))], ctx.clock())


@dataclass
class Books:
    """One account as the database has it: what reads show, the ledger, the queue, the events."""

    read_balance: int
    entries: int
    pending: int
    events: int
    rollups: int


async def _books(ctx: Context, account: str) -> Books:
    async with ctx.db.read() as conn:
        read = (await ledger.get_account(conn, account)).balance
        entries = sum(e.amount for e in await ledger.list_entries(conn, account, limit=10_000))
        pending = (await ledger.pending_costs(conn, [account])).get(account, 0)
        events = (await metering.usage_totals(conn)).get(account, 0)
        day = usage_rollups.c.granularity == "day"
        rollups = await conn.scalar(
            select(func.coalesce(func.sum(usage_rollups.c.cost), 0)).where(
                usage_rollups.c.account_id == account, day
            )
        )
    return Books(int(read), int(entries), pending, events, int(rollups or 0))


def _run(ctx: Context, body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        try:
            await body()
        finally:
            await ctx.db.dispose()

    asyncio.run(main())


def test_an_answer_is_in_every_read_before_the_apply_and_posted_once(
    fresh_database_url: str, tmp_path: Path
) -> None:
    ctx = _context(fresh_database_url, tmp_path)
    account = support.new_account_id()

    async def body() -> None:
        await _open(ctx, [account], 1000)  # $10
        batch = [_event(account, f"e{i}", 100) for i in range(3)]
        result = await report_usage(ctx, batch, OPERATOR)
        assert (result.accepted, result.duplicates) == (3, 0)
        again = await report_usage(ctx, batch, OPERATOR)  # the same ids: stored once
        assert (again.accepted, again.duplicates) == (0, 3)
        books = await _books(ctx, account)
        # read-your-writes: the balance shows the usage; the ledger has not moved yet
        assert (books.read_balance, books.entries, books.pending, books.events) == (
            cents(700),
            cents(1000),
            cents(300),
            cents(300),
        )
        # authorize counts it: $7 is left, not $10
        denied = await authorizing.authorize(
            ctx,
            {"account_id": account, "request_id": "r1", "model": "m", "estimated_cost_usd": "7.01"},
            OPERATOR,
        )
        assert not denied.allowed and denied.reason == "insufficient_credit"
        assert await apply_all(ctx) == 1
        assert await apply_all(ctx) == 0
        books = await _books(ctx, account)
        assert (books.read_balance, books.entries, books.pending, books.rollups) == (
            cents(700),
            cents(700),
            0,
            cents(300),
        )
        async with ctx.db.read() as conn:
            assert (await reconcile_report(conn))["ok"]
        granted = await authorizing.authorize(
            ctx,
            {"account_id": account, "request_id": "r2", "model": "m", "estimated_cost_usd": "7.00"},
            OPERATOR,
        )
        assert granted.allowed

    _run(ctx, body)


def test_a_failure_between_the_apply_statements_writes_nothing(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _context(fresh_database_url, tmp_path)
    account = support.new_account_id()

    async def body() -> None:
        await _open(ctx, [account], 1000)
        await report_usage(ctx, [_event(account, "a", 250), _event(account, "b", 50)], OPERATOR)
        real = metering_repo.add_to_hourly_rollups

        async def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("injected: the process dies after the ledger post")

        monkeypatch.setattr(metering_repo, "add_to_hourly_rollups", broken)
        with pytest.raises(RuntimeError, match="injected"):
            await apply_once(ctx)
        books = await _books(ctx, account)
        assert (books.entries, books.pending, books.rollups) == (cents(1000), cents(300), 0)
        monkeypatch.setattr(metering_repo, "add_to_hourly_rollups", real)
        assert await apply_once(ctx) == 1
        books = await _books(ctx, account)
        assert (books.entries, books.pending, books.rollups) == (cents(700), 0, cents(300))
        assert books.entries == cents(1000) - books.events

    _run(ctx, body)


def test_concurrent_ingests_and_appliers_post_each_event_once(
    fresh_database_url: str, tmp_path: Path
) -> None:
    ctx = _context(fresh_database_url, tmp_path)
    accounts = [support.new_account_id() for _ in range(4)]

    async def body() -> None:
        await _open(ctx, accounts, 100_000)

        async def ingest(sender: int) -> None:
            for n in range(6):
                # every sender repeats the others' ids: each event is stored and posted once
                batch = [_event(a, f"e{n}-{i}", 1 + i) for i, a in enumerate(accounts)]
                await report_usage(ctx, batch, OPERATOR)
                await asyncio.sleep(0)
            del sender

        async def applier() -> None:
            for _ in range(12):
                await apply_once(ctx, limit=3)

        await asyncio.gather(*[ingest(s) for s in range(3)], *[applier() for _ in range(3)])
        await apply_all(ctx)
        for i, account in enumerate(accounts):
            books = await _books(ctx, account)
            assert books.events == cents(6 * (1 + i))
            assert (books.pending, books.entries, books.rollups) == (
                0,
                cents(100_000) - books.events,
                books.events,
            )
        async with ctx.db.read() as conn:
            assert (await reconcile_report(conn))["ok"]

    _run(ctx, body)


def test_a_deferred_settle_is_in_every_read_at_once_and_posted_once_by_the_applier(
    fresh_database_url: str, tmp_path: Path
) -> None:
    ctx = _context(fresh_database_url, tmp_path)
    account = support.new_account_id()

    async def body() -> None:
        await _open(ctx, [account], 1000)  # $10
        ask = {"account_id": account, "request_id": "call", "model": "m", "estimated_cost_usd": "6.00"}
        decision = await authorizing.authorize(ctx, ask, OPERATOR)
        assert decision.allowed and decision.hold is not None
        settled = await holds.settle(ctx, decision.hold.id, {"cost_usd": "2.50"}, OPERATOR)
        assert (settled.hold.status, settled.hold.captured, settled.replayed) == (
            "settled",
            cents(250),
            False,
        )
        replay = await holds.settle(ctx, decision.hold.id, {"cost_usd": "2.50"}, OPERATOR)
        assert replay.replayed
        books = await _books(ctx, account)
        # the hold is released and its cost waits for the applier: reads and authorize see $7.50
        assert (books.read_balance, books.entries, books.pending, books.events) == (
            cents(750),
            cents(1000),
            cents(250),
            cents(250),
        )
        async with ctx.db.read() as conn:
            assert (await ledger.get_account(conn, account)).held == 0
        over = {**ask, "request_id": "next", "estimated_cost_usd": "7.51"}
        assert not (await authorizing.authorize(ctx, over, OPERATOR)).allowed
        assert await apply_all(ctx) == 1
        assert await apply_all(ctx) == 0
        books = await _books(ctx, account)
        assert (books.read_balance, books.entries, books.pending, books.rollups) == (
            cents(750),
            cents(750),
            0,
            cents(250),
        )
        async with ctx.db.read() as conn:
            assert (await reconcile_report(conn))["ok"]
        fits = {**ask, "request_id": "last", "estimated_cost_usd": "7.50"}
        assert (await authorizing.authorize(ctx, fits, OPERATOR)).allowed

    _run(ctx, body)


def test_the_running_applier_posts_everything_and_vacuums_its_queue(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop of `serve` and `worker`, with ingest going on: every event posted once, and on
    PostgreSQL the queue vacuumed by the applier (autovacuum comes too rarely for it)."""
    monkeypatch.setattr(apply_usage, "VACUUM_AFTER_ROWS", 1)
    monkeypatch.setattr(apply_usage, "VACUUM_EVERY_SECONDS", 0.0)
    ctx = _context(fresh_database_url, tmp_path)
    accounts = [support.new_account_id() for _ in range(3)]

    async def vacuums() -> int:
        async with ctx.db.read() as conn:
            if ctx.db.is_sqlite:
                return 0
            found = await conn.scalar(
                text("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'usage_pending'")
            )
            return int(found or 0)

    async def body() -> None:
        await _open(ctx, accounts, 100_000)
        before = await vacuums()
        loop = asyncio.create_task(apply_usage.run_applier(ctx))
        try:
            for n in range(5):
                await report_usage(ctx, [_event(a, f"e{n}", 1 + i) for i, a in enumerate(accounts)], OPERATOR)
                await asyncio.sleep(0.3)
            for _ in range(100):
                async with ctx.db.read() as conn:
                    if not await ledger.pending_costs(conn):
                        break
                await asyncio.sleep(0.1)
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        for i, account in enumerate(accounts):
            books = await _books(ctx, account)
            assert (books.events, books.pending, books.rollups) == (cents(5 * (1 + i)), 0, books.events)
            assert books.entries == cents(100_000) - books.events
        if not ctx.db.is_sqlite:
            assert await vacuums() > before

    _run(ctx, body)


# --- a real process killed (SIGKILL) between the statements of its apply transaction ----------

_KILLED_APPLIER = """
import asyncio, sys
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.workflows import Context
from creditgate.workflows.apply_usage import apply_once

async def stall(*args, **kwargs):
    print("posted", flush=True)  # the ledger entry is written, uncommitted
    await asyncio.sleep(3600)

async def main():
    settings = Settings(database_url=sys.argv[1], run_jobs=False)
    ctx = Context(settings=settings, db=Database(settings.database_url, pool_size=2))
    real_post = ledger.post
    async def post_then_stall(*args, **kwargs):
        posted = await real_post(*args, **kwargs)
        await stall()
        return posted
    ledger.post = post_then_stall
    await apply_once(ctx)

asyncio.run(main())
"""


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    support.pg_or_skip()
    url = support.create_pg_database()
    try:
        support.prepare(support.make_settings(url, tmp_path))
        yield url
    finally:
        support.drop_pg_database(url)


def test_an_applier_killed_mid_apply_loses_and_doubles_nothing(pg_url: str, tmp_path: Path) -> None:
    ctx = _context(pg_url, tmp_path)
    accounts = [support.new_account_id() for _ in range(3)]

    async def ingest() -> None:
        await _open(ctx, accounts, 1000)
        batch = [_event(a, f"k{n}", 10 + n) for n in range(5) for a in accounts]
        assert (await report_usage(ctx, batch, OPERATOR)).accepted == 15
        await ctx.db.dispose()  # its connections belong to this event loop

    async def after_the_kill() -> None:
        for account in accounts:
            books = await _books(ctx, account)
            assert (books.entries, books.pending) == (cents(1000), books.events)  # nothing applied
        await apply_all(ctx)
        for account in accounts:
            books = await _books(ctx, account)
            assert (books.entries, books.pending, books.rollups) == (
                cents(1000) - books.events,
                0,
                books.events,
            )
        async with ctx.db.read() as conn:
            assert (await reconcile_report(conn))["ok"]

    asyncio.run(ingest())
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_APPLIER, ctx.settings.database_url],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "posted"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    _run(ctx, after_the_kill)


# --- property: ingest, apply and authorize interleaved never overspend -------------------------

LIMIT_CENTS = 600  # account 1 has a daily limit; account 0 only its balance
OPENING_CENTS = 1000

OPS = st.one_of(
    st.tuples(st.just("ingest"), st.integers(0, 1), st.integers(0, 7), st.integers(0, 400)),
    st.tuples(st.just("apply"), st.integers(1, 3)),
    st.tuples(st.just("authorize"), st.integers(0, 1), st.integers(1, 500)),
)


@dataclass
class Model:
    """What the books must say: usage stored per account (costs of distinct ids) and holds."""

    costs: dict[tuple[int, int], int] = field(default_factory=dict)
    held: list[int] = field(default_factory=lambda: [0, 0])

    def usage(self, account: int) -> int:
        return sum(cost for (a, _), cost in self.costs.items() if a == account)


@pytest.fixture(scope="module")
def prop_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("applier") / "props.db"
        url = f"sqlite:///{path}"
        support.prepare(support.make_settings(url, path.parent))
        yield url
        return
    support.pg_or_skip()
    url = support.create_pg_database()
    try:
        support.prepare(support.make_settings(url, Path(tmp_path_factory.mktemp("applier"))))
        yield url
    finally:
        support.drop_pg_database(url)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(OPS, min_size=1, max_size=16))
def test_interleaved_ingest_apply_and_authorize_never_overspend(
    prop_url: str, tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[Any, ...]]
) -> None:
    ctx = _context(prop_url, tmp_path_factory.getbasetemp(), ManualClock(START))
    accounts = [support.new_account_id() for _ in range(2)]
    model = Model()

    async def check() -> None:
        for index, account in enumerate(accounts):
            books = await _books(ctx, account)
            assert books.events == cents(model.usage(index))
            assert (
                books.read_balance
                == books.entries - books.pending
                == cents(OPENING_CENTS - model.usage(index))
            )
            async with ctx.db.read() as conn:
                assert (await limits.hold_totals(conn, account))[0] == cents(model.held[index])

    async def body() -> None:
        await _open(ctx, accounts, OPENING_CENTS)
        async with ctx.db.write() as conn:
            await limit_config.set_limit(
                conn, accounts[1], amount=cents(LIMIT_CENTS), duration="daily", strategy="fixed", now=START
            )
        for number, op in enumerate(ops):
            if op[0] == "ingest":
                _, index, event, cost = op
                result = await report_usage(ctx, [_event(accounts[index], f"e{event}", cost)], OPERATOR)
                if (index, event) not in model.costs:
                    model.costs[(index, event)] = cost
                assert result.accepted + result.duplicates == 1
            elif op[0] == "apply":
                await apply_once(ctx, limit=op[1])
            else:
                _, index, amount = op
                decision = await authorizing.authorize(
                    ctx,
                    {
                        "account_id": accounts[index],
                        "request_id": f"r{number}",
                        "model": "m",
                        "estimated_cost_usd": f"{amount // 100}.{amount % 100:02d}",
                    },
                    OPERATOR,
                )
                # exact: granted if and only if it fits what is left, applied or not
                room = OPENING_CENTS - model.usage(index) - model.held[index]
                if index == 1:
                    room = min(room, LIMIT_CENTS - model.usage(1) - model.held[1])
                assert decision.allowed == (amount <= room), (op, room, decision)
                if decision.allowed:
                    model.held[index] += amount
            await check()
        await apply_all(ctx)
        await check()
        async with ctx.db.read() as conn:
            assert await conn.scalar(select(func.count()).select_from(usage_pending)) == 0
            assert await limits.window_spend(conn, accounts[1], START) == cents(model.usage(1))
            stored = await conn.scalar(
                select(func.count()).select_from(usage_events).where(usage_events.c.account_id.in_(accounts))
            )
            assert stored == len(model.costs)

    _run(ctx, body)


def test_the_applier_addresses_queue_rows_by_pair_in_a_generic_plan(pg_url: str) -> None:
    """The roll-up and the claim of given rows match (id, account) pairs. With `id = ANY($1)
    AND account_id = ANY($2)` PostgreSQL 15's generic plan made one index probe per pair of
    array elements: 5,000 rows over 10,000 accounts took 10 s a pass and the applier never
    caught up (bench/history.py's empty database, second run)."""

    async def main() -> list[str]:
        import asyncpg

        conn = await asyncpg.connect(pg_url)
        plans = []
        try:
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            for name, sql in (("rollup", metering_repo._PG_ROLL_UP), ("claim", metering_repo._PG_CLAIM_ROWS)):
                await conn.execute(f"PREPARE {name}(bigint[], varchar[]) AS {sql}")
                rows = await conn.fetch(f"EXPLAIN EXECUTE {name}('{{1,2}}', '{{a,b}}')")
                plans.append("\n".join(r[0] for r in rows))
        finally:
            await conn.close()
        return plans

    for plan in asyncio.run(main()):
        conditions = [line for line in plan.splitlines() if "Index Cond" in line or "Filter" in line]
        assert all(line.count("ANY") <= 1 for line in conditions), plan


def test_sqlite_finds_queue_rows_by_id_alone(fresh_database_url: str, tmp_path: Path) -> None:
    """SQLite, given `id IN (...) AND account_id IN (...)` on the queue's (id, account_id) key,
    probes every pair of the two lists (5,000 ids x 1,000 accounts: 575 ms a statement); the
    applier's statements on the queue find their rows through the key by id alone there."""
    if not fresh_database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's statements are checked by the generic-plan test")
    from sqlalchemy import event

    ctx = _context(fresh_database_url, tmp_path)
    accounts = [support.new_account_id() for _ in range(3)]
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "usage_pending" in statement and statement.lstrip().upper().startswith(("DELETE", "SELECT")):
            seen.append((statement, parameters))

    async def body() -> None:
        await _open(ctx, accounts, 1000)
        event.listen(ctx.db.engine.sync_engine, "before_cursor_execute", capture)
        try:
            await report_usage(ctx, [_event(a, f"e{i}", 1) for i, a in enumerate(accounts)], OPERATOR)
            assert await apply_all(ctx) == len(accounts)
        finally:
            event.remove(ctx.db.engine.sync_engine, "before_cursor_execute", capture)

    _run(ctx, body)
    deletes = [(s, p) for s, p in seen if s.lstrip().upper().startswith("DELETE")]
    assert deletes, seen
    import sqlite3

    with sqlite3.connect(fresh_database_url.removeprefix("sqlite:///")) as raw:
        for statement, parameters in deletes:
            plan = " ".join(str(r) for r in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters))
            assert "account_id=?" not in plan, plan
