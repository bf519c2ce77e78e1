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
    async with ctx.db.write() as conn:
        now = ctx.clock()
        charged = await applier.apply_pending(conn, now, limit=limit or ctx.settings.usage_apply_batch)
        await after_debits(ctx, conn, charged.items(), now)
    return len(charged)


async def apply_all(ctx: Context) -> int:
    """Apply until nothing is waiting; returns the account debits posted."""
    total = 0
    while applied := await apply_once(ctx):
        total += applied
    return total


async def run_applier(ctx: Context) -> None:
    """Apply forever (until cancelled), woken by local ingests or every poll interval. A
    failed pass is logged and retried after the interval; its transaction wrote nothing."""
    poll = ctx.settings.usage_apply_poll_seconds
    while True:
        ctx.usage_stored.clear()
        try:
            with metrics.job_run("apply_usage"):
                await apply_all(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("usage apply failed; retrying in %ss", poll)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.usage_stored.wait(), poll)
