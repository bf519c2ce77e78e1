"""Periodic, idempotent background work. `creditgate serve` runs it in-process; `creditgate
worker` runs it alone. Each job is an async function of (db, clock) that does one bounded
pass and returns how many items it handled; a job must be safe with two runners at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from creditgate.billing import inbox
from creditgate.clock import Clock
from creditgate.db import Database
from creditgate.limits import service as limits
from creditgate.notify import delivery

log = logging.getLogger("creditgate.jobs")

Job = Callable[[Database, Clock], Awaitable[int]]

JOBS: dict[str, Job] = {}


def job(name: str) -> Callable[[Job], Job]:
    """Register a periodic job under `name`."""

    def register(fn: Job) -> Job:
        JOBS[name] = fn
        return fn

    return register


async def run_once(db: Database, clock: Clock, names: list[str] | None = None) -> dict[str, int]:
    """One pass of every (or the named) job; a failing job is logged and does not stop the rest."""
    done: dict[str, int] = {}
    for name, fn in JOBS.items():
        if names is not None and name not in names:
            continue
        try:
            done[name] = await fn(db, clock)
            if done[name]:
                log.info("job %s handled %d item(s)", name, done[name])
        except Exception:
            log.exception("job %s failed; it will run again next pass", name)
            done[name] = -1
    return done


async def run_forever(db: Database, clock: Clock, interval: float = 5.0) -> None:
    """Run passes every `interval` seconds until cancelled."""
    while True:
        await run_once(db, clock)
        await asyncio.sleep(interval)


@job("expire_holds")
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


@job("prune_spend_buckets")
async def prune_spend_buckets(db: Database, clock: Clock) -> int:
    """Drop per-minute spend older than any spending-limit window can reach."""
    async with db.write() as conn:
        return await limits.prune_spend(conn, clock())


@job("deliver_webhooks")
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


@job("webhook_inbox")
async def retry_webhook_inbox(db: Database, clock: Clock) -> int:
    """Dispatch again the incoming processor events whose handler failed."""
    async with db.write() as conn:
        return await inbox.retry_due(conn, clock())
