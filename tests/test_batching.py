"""The batchers' one failure policy: a member that fails its group's unit of work fails only
itself. The others get the answers they would have had alone, and the books show exactly their
writes. (The usage group commit is proven the same way in test_ingest_queue.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from creditgate.accounts.principal import OPERATOR
from creditgate.clock import system_clock
from creditgate.db import Database
from creditgate.errors import ValidationError
from creditgate.ledger import service as ledger
from creditgate.limits import service as limits
from creditgate.metering import settle as settling
from creditgate.metering.settle import Settlement
from creditgate.money import MAX_AMOUNT, UNITS_PER_USD, parse_usd
from creditgate.workflows import Context, holds
from creditgate.workflows import authorize as authorizing
from tests import support


async def _open(db: Database, accounts: list[str], usd: int) -> None:
    now = system_clock()
    async with db.write() as conn:
        for account in accounts:
            await ledger.open_account(conn, account, name="b", mode="prepaid", now=now)
            await ledger.post(conn, [ledger.Posting(account, "adjustment", usd * UNITS_PER_USD)], now)


async def _held(db: Database, accounts: list[str]) -> dict[str, tuple[int, int, int]]:
    """(balance, held, sum of open holds) per account."""
    async with db.read() as conn:
        rows = await ledger.get_accounts(conn, accounts)
        out = {}
        for account in accounts:
            open_holds, _ = await limits.hold_totals(conn, account)
            out[account] = (rows[account].balance, rows[account].held, open_holds)
        return out


def _hold_request(account: str, request_id: str, usd: str, metadata: Any = None) -> limits.HoldRequest:
    return limits.HoldRequest(
        account_id=account,
        request_id=request_id,
        amount=parse_usd(usd),
        now=system_clock(),
        ttl_seconds=600,
        model="m",
        metadata=metadata,
    )


def test_authorize_batch_isolates_a_member_that_fails_the_unit_of_work(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = support.make_settings(fresh_database_url, tmp_path)

    async def main() -> None:
        db = Database(settings.database_url, pool_size=4)
        ctx = Context(settings=settings, db=db)
        a, b, bad = support.new_account_id(), support.new_account_id(), support.new_account_id()
        await _open(db, [a, b, bad], 10)
        # metadata that cannot be stored as JSON fails the statement (or transaction) it is in
        requests = [
            _hold_request(a, "r1", "1"),
            _hold_request(bad, "r1", "1", metadata={"x": object()}),
            _hold_request(b, "r1", "2"),
            _hold_request(a, "r2", "3"),
        ]
        answers = await asyncio.gather(
            *[ctx.authorize_batcher.submit(r) for r in requests], return_exceptions=True
        )
        assert isinstance(answers[1], Exception)
        good = [answers[i] for i in (0, 2, 3)]
        assert all(isinstance(d, limits.Decision) and d.allowed and not d.replayed for d in good), answers
        amounts = [d.hold.amount for d in good if isinstance(d, limits.Decision) and d.hold is not None]
        assert amounts == [parse_usd("1"), parse_usd("2"), parse_usd("3")]
        assert await _held(db, [a, b, bad]) == {
            a: (parse_usd("10"), parse_usd("4"), parse_usd("4")),
            b: (parse_usd("10"), parse_usd("2"), parse_usd("2")),
            bad: (parse_usd("10"), 0, 0),
        }
        await db.dispose()

    asyncio.run(main())


def test_settle_batch_isolates_a_member_that_fails_the_unit_of_work(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = support.make_settings(fresh_database_url, tmp_path)

    async def main() -> None:
        db = Database(settings.database_url, pool_size=4)
        ctx = Context(settings=settings, db=db)
        a, b, rich = support.new_account_id(), support.new_account_id(), support.new_account_id()
        await _open(db, [a, b, rich], 1)
        held = {}
        for account in (a, b, rich):
            body = {"account_id": account, "request_id": "call", "model": "m", "estimated_cost_usd": "0.50"}
            decision = await authorizing.authorize(ctx, body, OPERATOR)
            assert decision.allowed and decision.hold is not None
            held[account] = decision.hold.id
        async with db.write() as conn:  # one more dollar of debt and `rich` passes the balance bound
            await ledger.post(conn, [ledger.Posting(rich, "adjustment", -MAX_AMOUNT)], system_clock())
        groups: list[int] = []
        original = settling.settle_many

        async def counting(
            conn: Any, requests: list[settling.SettleRequest], *args: Any, **kwargs: Any
        ) -> Any:
            groups.append(len(requests))
            return await original(conn, requests, *args, **kwargs)

        costs = {a: "0.40", rich: "2", b: "0.30"}
        settling.settle_many = counting  # type: ignore[assignment]
        try:
            answers = await asyncio.gather(
                *[holds.settle(ctx, held[acc], {"cost_usd": cost}, OPERATOR) for acc, cost in costs.items()],
                return_exceptions=True,
            )
        finally:
            settling.settle_many = original  # type: ignore[assignment]
        assert groups[0] == 3, groups  # all three went in one transaction first
        assert isinstance(answers[1], ValidationError) and answers[1].field == "amount"
        done = [answers[0], answers[2]]
        assert all(isinstance(s, Settlement) and not s.replayed for s in done), answers
        captured = [s.hold.captured for s in done if isinstance(s, Settlement)]
        assert captured == [parse_usd("0.40"), parse_usd("0.30")]
        assert await _held(db, [a, b, rich]) == {
            a: (parse_usd("0.60"), 0, 0),
            b: (parse_usd("0.70"), 0, 0),
            rich: (parse_usd("1") - MAX_AMOUNT, parse_usd("0.50"), parse_usd("0.50")),  # nothing written
        }
        async with db.read() as conn:
            assert (await limits.get_hold(conn, held[rich], OPERATOR)).status == "open"
        await db.dispose()

    asyncio.run(main())


def _gated_batcher(in_flight: int) -> tuple[Any, list[list[int]], dict[str, int]]:
    """A Batcher whose units wait on a gate: the groups it ran, and the most units at once."""
    from contextlib import asynccontextmanager

    from creditgate.workflows.batching import Batcher

    gate = asyncio.Event()
    groups: list[list[int]] = []
    seen = {"now": 0, "most": 0}

    @asynccontextmanager
    async def unit() -> Any:
        yield None

    async def run(_conn: Any, items: list[int]) -> list[int]:
        seen["now"] += 1
        seen["most"] = max(seen["most"], seen["now"])
        groups.append(items)
        await gate.wait()
        seen["now"] -= 1
        return [i * 10 for i in items]

    batcher = Batcher(unit, run, name="test", in_flight=in_flight)
    batcher.gate = gate  # type: ignore[attr-defined]
    return batcher, groups, seen


def test_batcher_runs_at_most_in_flight_units_at_once_and_groups_what_waits() -> None:
    async def main(in_flight: int) -> tuple[list[list[int]], int, list[int]]:
        batcher, groups, seen = _gated_batcher(in_flight)
        first = []
        for i in range(in_flight):  # one at a time: each is in its unit before the next arrives
            first.append(asyncio.ensure_future(batcher.submit(i)))
            while len(groups) <= i:
                await asyncio.sleep(0)
        later = [asyncio.ensure_future(batcher.submit(i)) for i in range(100, 105)]
        await asyncio.sleep(0.01)
        batcher.gate.set()
        answers = await asyncio.gather(*first, *later)
        return groups, seen["most"], answers

    groups, most, answers = asyncio.run(main(1))
    assert most == 1 and groups == [[0], [100, 101, 102, 103, 104]]
    assert answers == [0, 1000, 1010, 1020, 1030, 1040]
    groups, most, answers = asyncio.run(main(3))
    assert most == 3 and groups == [[0], [1], [2], [100, 101, 102, 103, 104]]
    assert answers == [0, 10, 20, 1000, 1010, 1020, 1030, 1040]
