"""Periodic, idempotent background work. `creditgate serve` runs it in-process; `creditgate
worker` runs it alone. Each job is an async function of (db, clock) that does one bounded
pass and returns how many items it handled; a job must be safe with two runners at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from creditgate.clock import Clock
from creditgate.db import Database

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
    from creditgate.limits import service as limits

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
    from creditgate.limits import service as limits

    async with db.write() as conn:
        return await limits.prune_spend(conn, clock())
