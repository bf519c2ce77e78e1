"""Periodic, idempotent background work. `creditgate serve` runs it in-process; `creditgate
worker` runs it alone. Each job does one bounded pass with the process's Context and returns
how many items it handled; a job must be safe with two runners at once. The jobs are wired
explicitly, in the order a pass runs them, in `JOBS`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from creditgate.billing import handlers, inbox
from creditgate.clock import Clock
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.limits import service as limits
from creditgate.notify import delivery
from creditgate.workflows import statements, topup
from creditgate.workflows.context import Context

log = logging.getLogger("creditgate.jobs")
assert handlers  # imported so a worker without the app still dispatches webhook events


@dataclass(frozen=True)
class Job:
    """A named periodic pass over the process's Context."""

    name: str
    run: Callable[[Context], Awaitable[int]]


async def run_once(ctx: Context, names: Sequence[str] | None = None) -> dict[str, int]:
    """One pass of every (or the named) job, in `JOBS` order; a failing job is logged, counted
    as -1 and does not stop the rest."""
    done: dict[str, int] = {}
    for job in JOBS:
        if names is not None and job.name not in names:
            continue
        try:
            done[job.name] = await job.run(ctx)
            if done[job.name]:
                log.info("job %s handled %d item(s)", job.name, done[job.name])
        except Exception:
            log.exception("job %s failed; it will run again next pass", job.name)
            done[job.name] = -1
    return done


async def run_forever(ctx: Context, interval: float = 5.0, names: Sequence[str] | None = None) -> None:
    """Run passes every `interval` seconds until cancelled."""
    while True:
        await run_once(ctx, names)
        await asyncio.sleep(interval)


async def expire_holds(db: Database, clock: Clock) -> int:
    """Release holds past their TTL, in batches (two runners never take the same hold)."""
    total = 0
    for _ in range(100):  # bounded: at most 50,000 holds per pass
        async with db.write() as conn:
            done = await limits.expire(conn, clock(), batch=500)
        total += done
        if done < 500:
            break
    return total


async def prune_spend_buckets(db: Database, clock: Clock) -> int:
    """Drop per-minute spend older than any spending-limit window can reach."""
    async with db.write() as conn:
        return await limits.prune_spend(conn, clock())


async def deliver_webhooks(db: Database, clock: Clock, *, batch: int = 32, max_batches: int = 20) -> int:
    """Send due outgoing webhooks: claim a batch under a lease (committed), POST them, then
    record every attempt and schedule retries. Keeps going while batches come back full."""
    sent = 0
    for _ in range(max_batches):
        async with db.write() as conn:
            claimed = await delivery.claim(conn, clock(), limit=batch)
        if not claimed:
            break
        results = await delivery.send_all(claimed, clock)
        async with db.write() as conn:
            for item, result in zip(claimed, results, strict=True):
                await delivery.record(conn, item, result, clock())
        sent += len(claimed)
        if len(claimed) < batch:
            break
    return sent


async def retry_webhook_inbox(db: Database, clock: Clock) -> int:
    """Dispatch again the incoming processor events whose handler failed."""
    async with db.write() as conn:
        return await inbox.retry_due(conn, clock())


async def expire_grants(db: Database, clock: Clock) -> int:
    """Post the expiry entry (the unused remainder, possibly 0) of every grant whose
    `expires_at` has passed; one account per transaction, under its row lock. A second
    runner finds the `expiry:<id>` ref already posted and posts nothing."""
    now = clock()
    async with db.read() as conn:
        due = await ledger.grants_due_to_expire(conn, now)
    posted = 0
    for account_id, grant_ids in due.items():
        async with db.write() as conn:
            posted += await ledger.expire_grants(conn, account_id, grant_ids, now)
    return posted


JOBS: tuple[Job, ...] = (
    Job("expire_holds", lambda ctx: expire_holds(ctx.db, ctx.clock)),
    Job("prune_spend_buckets", lambda ctx: prune_spend_buckets(ctx.db, ctx.clock)),
    Job("deliver_webhooks", lambda ctx: deliver_webhooks(ctx.db, ctx.clock)),
    Job("webhook_inbox", lambda ctx: retry_webhook_inbox(ctx.db, ctx.clock)),
    Job("auto_topups", lambda ctx: topup.run_auto_topups(ctx)),
    Job("close_periods", lambda ctx: statements.close_periods(ctx)),
    Job("expire_grants", lambda ctx: expire_grants(ctx.db, ctx.clock)),
)
NAMES: tuple[str, ...] = tuple(job.name for job in JOBS)
