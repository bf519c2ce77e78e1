"""The usage applier workflow: post stored usage off the request path (metering/applier.py).

`apply_once` runs one transaction: claim up to a batch of pending rows, debit, roll up, record
the spend and queue the auto top-ups of the accounts it took under their threshold
(workflows/debits.py). `run_applier` loops: it drains the queue, then sleeps until an ingest in
this process signals (`Context.usage_stored`) or the poll interval passes (usage stored by
other processes). It runs in `creditgate serve` and in `creditgate worker`; several at once
share the queue (SKIP LOCKED on PostgreSQL; SQLite has one writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from creditgate.metering import applier
from creditgate.observability import metrics
from creditgate.workflows.debits import after_debits

if TYPE_CHECKING:
    from creditgate.workflows.context import Context

log = logging.getLogger("creditgate.usage_applier")


async def apply_once(ctx: Context, *, limit: int | None = None) -> int:
    """One apply transaction; returns how many accounts it debited (0: nothing was waiting)."""
    return len((await _apply(ctx, limit or ctx.settings.usage_apply_batch)).charged)


async def _apply(ctx: Context, limit: int) -> applier.Applied:
    async with ctx.db.write() as conn:
        now = ctx.clock()
        applied = await applier.apply_pending(conn, now, limit=limit)
        await after_debits(ctx, conn, applied.charged.items(), now)
    return applied


async def _apply_backlog(ctx: Context) -> None:
    """One pass, and more at once while each takes a full batch (a backlog larger than one)."""
    limit = ctx.settings.usage_apply_batch
    while (await _apply(ctx, limit)).rows >= limit:
        pass


async def apply_all(ctx: Context) -> int:
    """Apply until nothing is waiting; returns the account debits posted."""
    total = 0
    while applied := await apply_once(ctx):
        total += applied
    return total


async def run_applier(ctx: Context) -> None:
    """Apply forever (until cancelled), woken by local ingests or every poll interval. Passes
    start at least `usage_apply_interval_seconds` apart, so that under load each pass sums
    more usage per account (one ledger entry, one spend update and one rollup row per key,
    whatever the number of events behind them); a backlog of full batches is taken at once.
    A failed pass is logged and retried after the poll interval; its transaction wrote nothing."""
    poll = ctx.settings.usage_apply_poll_seconds
    interval = ctx.settings.usage_apply_interval_seconds
    loop = asyncio.get_running_loop()
    while True:
        ctx.usage_stored.clear()
        started = loop.time()
        try:
            with metrics.job_run("apply_usage"):
                await _apply_backlog(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("usage apply failed; retrying in %ss", poll)
        rest = interval - (loop.time() - started)
        if rest > 0:
            await asyncio.sleep(rest)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.usage_stored.wait(), poll)
