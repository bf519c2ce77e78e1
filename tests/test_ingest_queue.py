"""Group commit: concurrent batches share a transaction, each keeps its own answer, and a
batch that fails only fails itself."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from creditgate.accounts.principal import OPERATOR
from creditgate.clock import system_clock
from creditgate.db import Database
from creditgate.errors import ValidationError
from creditgate.ledger import service as ledger
from creditgate.metering import service as metering
from creditgate.money import MAX_AMOUNT, parse_usd
from creditgate.workflows import Context
from tests import support


def _event(account: str, event_id: str, cost: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "account_id": account,
        "model": "m",
        "input_tokens": 1,
        "output_tokens": 1,
        "cost_usd": cost,
    }


def test_group_keeps_each_answer_and_isolates_a_failing_batch(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = support.make_settings(fresh_database_url, tmp_path)

    async def main() -> None:
        db = Database(settings.database_url, pool_size=4)
        svc = Context(settings=settings, db=db)
        a, b, rich = support.new_account_id(), support.new_account_id(), support.new_account_id()
        now = system_clock()
        async with db.write() as conn:
            for account in (a, b, rich):
                await ledger.open_account(conn, account, name="q", mode="prepaid", now=now)
            # one more dollar of debt and this account passes the balance bound
            await ledger.post(conn, [ledger.Posting(rich, "adjustment", -MAX_AMOUNT + 10**9)], now)
        groups: list[int] = []
        original = metering.ingest_parsed

        async def counting(conn: Any, batches: list[metering.ParsedBatch], *args: Any, **kw: Any) -> Any:
            groups.append(len(batches))
            return await original(conn, batches, *args, **kw)

        queue = svc.usage_queue
        batches = [
            [_event(a, "e1", "0.10"), _event(b, "e1", "0.20")],
            [_event(a, "e1", "0.10"), _event(a, "e2", "0.01")],  # e1 is the first batch's
            [_event(rich, "x", "2")],  # takes `rich` past the bound: fails alone
            [_event(b, "e2", "0.30"), {"id": "bad"}],
        ]
        parsed = [metering.ParsedBatch(*metering.parse_batch(events, OPERATOR, now)) for events in batches]
        metering.ingest_parsed = counting  # type: ignore[assignment]
        try:
            results = await asyncio.gather(*[queue.submit(p) for p in parsed], return_exceptions=True)
        finally:
            metering.ingest_parsed = original  # type: ignore[assignment]
        assert groups[0] == 4, groups  # all four went in one transaction first
        assert isinstance(results[2], ValidationError) and results[2].field == "amount"
        ok = [r for r in results if isinstance(r, metering.IngestResult)]
        assert [(r.accepted, r.duplicates, len(r.rejected)) for r in ok] == [(2, 0, 0), (1, 1, 0), (1, 0, 1)]
        async with db.read() as conn:
            rows = await ledger.get_accounts(conn, [a, b, rich])
        assert rows[a].balance == -parse_usd("0.11")
        assert rows[b].balance == -parse_usd("0.50")
        assert rows[rich].balance == -MAX_AMOUNT + 10**9  # nothing of the failed batch was written
        await db.dispose()

    asyncio.run(main())


@pytest.mark.parametrize("size", [1, 3])
def test_empty_and_all_rejected_batches_skip_the_database(
    fresh_database_url: str, tmp_path: Path, size: int
) -> None:
    settings = support.make_settings(fresh_database_url, tmp_path)

    async def main() -> None:
        db = Database(settings.database_url, pool_size=2)
        queue = Context(settings=settings, db=db).usage_queue
        parsed = metering.ParsedBatch(*metering.parse_batch([{"id": "x"}] * size, OPERATOR, system_clock()))
        result = await queue.submit(parsed)
        assert (result.accepted, result.duplicates, len(result.rejected)) == (0, 0, size)
        empty = await queue.submit(metering.ParsedBatch([], []))
        assert (empty.accepted, empty.duplicates, empty.rejected) == (0, 0, [])
        await db.dispose()

    asyncio.run(main())
