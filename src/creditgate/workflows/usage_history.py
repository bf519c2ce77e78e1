"""The jobs that keep raw usage history bounded (docs/scaling.md, "Partitions and retention"):
monthly partitions created ahead (PostgreSQL), event ids forgotten after the deduplication
horizon (CREDITGATE_DEDUPE_HORIZON_DAYS), raw events dropped after the retention period
(CREDITGATE_RAW_EVENT_RETENTION_MONTHS; rollups, ledger and balances are kept)."""

from __future__ import annotations

from datetime import datetime, timedelta

from creditgate.metering import retention
from creditgate.workflows.context import Context

_MAX_PRUNE_BATCHES = 100  # bounded pass: at most 1,000,000 ids
_DROP_EVERY = timedelta(hours=1)  # a SQLite pass scans the events: not every jobs interval
_last_drop: dict[int, datetime] = {}  # per Context (a process has one)


async def ensure_partitions(ctx: Context) -> int:
    """Create this month's and the next months' partitions of usage_events when missing."""
    async with ctx.db.write() as conn:
        return await retention.ensure_partitions(conn, ctx.clock())


async def prune_event_ids(ctx: Context) -> int:
    """Forget the event ids received before the deduplication horizon, in batches."""
    before = ctx.clock() - timedelta(days=ctx.settings.dedupe_horizon_days)
    total = 0
    for _ in range(_MAX_PRUNE_BATCHES):
        async with ctx.db.write() as conn:
            done = await retention.prune_event_ids(conn, before)
        total += done
        if done < retention.PRUNE_BATCH:
            break
    return total


async def drop_old_raw_events(ctx: Context) -> int:
    """Drop raw events older than the retention period (none when it is unset); at most once
    an hour per process."""
    now = ctx.clock()
    cutoff = retention.retention_cutoff(now, ctx.settings.raw_event_retention_months)
    if cutoff is None or now < _last_drop.get(id(ctx), now - _DROP_EVERY) + _DROP_EVERY:
        return 0
    _last_drop[id(ctx)] = now
    async with ctx.db.write() as conn:
        return await retention.drop_raw_events(conn, cutoff)
