"""The usage applier workflow: post stored usage off the request path (metering/applier.py).

`apply_once` runs one transaction: claim up to a batch of pending rows, debit, roll up, record
the spend and queue the auto top-ups of the accounts it took under their threshold
(workflows/debits.py). `run_applier` loops: it drains the queue, then sleeps until an ingest in
this process signals (`Context.usage_stored`) or the poll interval passes (usage stored by
other processes). It runs in `creditgate serve` and in `creditgate worker`; several at once
share the queue (SKIP LOCKED on PostgreSQL; SQLite has one writer). Every VACUUM_AFTER_ROWS
rows taken (at most every VACUUM_EVERY_SECONDS) it vacuums the queue (metering/applier.py).
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

# Dead queue rows allowed to pile up before the applier reclaims them, and the least time
# between two of its vacuums (a few ms each while the queue holds a few thousand rows).
VACUUM_AFTER_ROWS = 10_000
VACUUM_EVERY_SECONDS = 2.0


async def apply_once(ctx: Context, *, limit: int | None = None) -> int:
    """One apply transaction; returns how many accounts it debited (0: nothing was waiting)."""
    return len((await _apply(ctx, limit or ctx.settings.usage_apply_batch)).charged)


async def _apply(ctx: Context, limit: int) -> applier.Applied:
    async with ctx.db.write() as conn:
        now = ctx.clock()
        applied = await applier.apply_pending(conn, now, limit=limit)
        await after_debits(ctx, conn, applied.charged.items(), now)
    return applied


async def _apply_backlog(ctx: Context) -> int:
    """One pass, and more at once while each takes a full batch (a backlog larger than one).
    Returns the queued rows taken."""
    limit = ctx.settings.usage_apply_batch
    taken = 0
    while True:
        rows = (await _apply(ctx, limit)).rows
        taken += rows
        if rows < limit:
            return taken


async def reclaim_queue(ctx: Context) -> None:
    """Vacuum the queue now (see metering/applier.py; PostgreSQL only)."""
    if ctx.db.is_sqlite:
        return
    async with ctx.db.single() as conn:
        await applier.reclaim_queue(conn)


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
    since_vacuum, vacuumed_at = 0, loop.time()
    while True:
        ctx.usage_stored.clear()
        started = loop.time()
        try:
            with metrics.job_run("apply_usage"):
                since_vacuum += await _apply_backlog(ctx)
            if since_vacuum >= VACUUM_AFTER_ROWS and started - vacuumed_at >= VACUUM_EVERY_SECONDS:
                await reclaim_queue(ctx)
                since_vacuum, vacuumed_at = 0, loop.time()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("usage apply failed; retrying in %ss", poll)
        rest = interval - (loop.time() - started)
        if rest > 0:
            await asyncio.sleep(rest)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.usage_stored.wait(), poll)
