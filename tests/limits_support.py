"""Helpers for the enforcement tests: limits and direct database checks on either backend."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import httpx

from creditgate.clock import system_clock
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.limits import config as limit_config
from creditgate.limits import service as limits
from creditgate.money import cents
from tests.support import LiveServer

T = TypeVar("T")


def with_db(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(url, pool_size=2)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def set_limit(
    server: LiveServer, account_id: str, amount_cents: int, duration: str = "daily", strategy: str = "fixed",
    now: datetime | None = None,
) -> None:
    """Set the account's spending limit through the Cloudflare spending-limit storage."""

    async def work(db: Database) -> None:
        async with db.write() as conn:
            await limit_config.set_limit(
                conn, account_id, amount=cents(amount_cents), duration=duration, strategy=strategy,
                now=now or system_clock(),
            )

    with_db(server.settings.database_url, work)


def account_state(server: LiveServer, account_id: str) -> dict[str, int]:
    """balance, held, open holds and overruns, straight from the database."""

    async def work(db: Database) -> dict[str, int]:
        async with db.read() as conn:
            row = await ledger.get_account(conn, account_id)
            open_sum, overruns = await limits.hold_totals(conn, account_id)
        return {"balance": int(row.balance), "held": int(row.held), "open": open_sum, "overruns": overruns}

    return with_db(server.settings.database_url, work)


def authorize(client: httpx.Client, account_id: str, request_id: str, estimate: str = "0.01",
              **extra: Any) -> dict[str, Any]:
    body = {"account_id": account_id, "request_id": request_id, "model": "gpt-4o", **extra}
    if estimate is not None:
        body["estimated_cost_usd"] = estimate
    r = client.post("/v1/gateway/authorize", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def settle(client: httpx.Client, hold_id: str, cost: str = "0.01", **extra: Any) -> dict[str, Any]:
    r = client.post(f"/v1/gateway/holds/{hold_id}/settle", json={"cost_usd": cost, **extra})
    assert r.status_code == 200, r.text
    return dict(r.json())
