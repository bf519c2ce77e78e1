"""Settle, void and read a hold. Settles are batched per process, one transaction per group.

Settling records the hold's actual usage through the normal ingest path (priced, stored once
per event id, debited once) and closes the hold in one transaction. As with usage ingest
(workflows/usage.py), CREDITGATE_USAGE_APPLY=deferred (the default) leaves the debit, rollups,
spend and auto top-up check to the usage applier, woken by the answer; `inline` does them in
the settle's transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.errors import CreditgateError
from creditgate.limits import service as limits
from creditgate.metering import settle as settling
from creditgate.metering.settle import Settlement, SettleRequest
from creditgate.workflows.authorize import IN_FLIGHT
from creditgate.workflows.batching import Batcher
from creditgate.workflows.debits import after_debits

if TYPE_CHECKING:
    from creditgate.workflows.context import Context

SettleBatcher = Batcher[SettleRequest, Settlement]


def settle_batcher(ctx: Context) -> SettleBatcher:
    """The process's settle batcher (built once, with the Context)."""

    inline = ctx.settings.usage_apply == "inline"

    async def run(conn: AsyncConnection, requests: list[SettleRequest]) -> list[Settlement | CreditgateError]:
        now = ctx.clock()
        results = await settling.settle_many(conn, requests, ctx.catalog, now, apply=inline)
        if not inline:
            return results  # the applier debits and checks auto top-up
        debits = (
            (r.hold.account_id, r.hold.captured or 0)
            for r in results
            if isinstance(r, Settlement) and not r.replayed
        )
        await after_debits(ctx, conn, debits, now)
        return results

    in_flight = 1 if ctx.db.is_sqlite else IN_FLIGHT  # one writer on SQLite
    return Batcher(ctx.db.write, run, name="settle", in_flight=in_flight)


async def settle(ctx: Context, hold_id: str, body: Any, caller: Principal) -> Settlement:
    """Record the actual usage of a hold (usage-event shape), charge it once, release the rest.
    Settling again with the same event id replays; another id is a Conflict."""
    settled = await ctx.settle_batcher.submit(SettleRequest(hold_id, body, caller))
    if not settled.replayed:
        ctx.usage_stored.set()  # committed: wake the in-process applier
    return settled


async def void(ctx: Context, hold_id: str, caller: Principal) -> limits.Hold:
    """Release a hold without charging (idempotent; voiding a settled hold is a Conflict)."""
    async with ctx.db.write() as conn:
        return await limits.void(conn, hold_id, caller, ctx.clock())


async def get_hold(ctx: Context, hold_id: str, caller: Principal) -> limits.Hold:
    """A hold the caller may see (NotFound otherwise)."""
    async with ctx.db.read() as conn:
        return await limits.get_hold(conn, hold_id, caller)
