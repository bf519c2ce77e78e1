"""Periodic, idempotent background work. `creditgate serve` runs it in-process; `creditgate
worker` runs it alone. Each job is one workflow pass over the process's Context that returns
how many items it handled; a job must be safe with two runners at once. The jobs are wired
explicitly, in the order a pass runs them, in `JOBS`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from creditgate.observability import metrics
from creditgate.workflows import statements, topup, webhooks_in
from creditgate.workflows.apply_usage import apply_all, run_applier
from creditgate.workflows.context import Context
from creditgate.workflows.expiry import expire_grants, expire_holds, prune_spend_buckets
from creditgate.workflows.usage_history import drop_old_raw_events, ensure_partitions, prune_event_ids
from creditgate.workflows.webhooks_out import deliver_webhooks

log = logging.getLogger("creditgate.jobs")


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
            with metrics.job_run(job.name):
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


async def run_usage_applier(ctx: Context) -> None:
    """The usage applier's own loop (CREDITGATE_USAGE_APPLY=deferred): it must wake within a
    fraction of a second of an ingest, so it does not wait for the jobs' interval."""
    if ctx.settings.usage_apply == "deferred":
        await run_applier(ctx)


JOBS: tuple[Job, ...] = (
    Job("apply_usage", apply_all),  # first: the debits before the auto top-ups they trigger
    Job("expire_holds", lambda ctx: expire_holds(ctx.db, ctx.clock)),
    Job("prune_spend_buckets", lambda ctx: prune_spend_buckets(ctx.db, ctx.clock)),
    Job("deliver_webhooks", lambda ctx: deliver_webhooks(ctx.db, ctx.clock)),
    Job("webhook_inbox", webhooks_in.retry_failed),
    Job("auto_topups", topup.run_auto_topups),
    Job("close_periods", statements.close_periods),
    Job("expire_grants", lambda ctx: expire_grants(ctx.db, ctx.clock)),
    Job("usage_partitions", ensure_partitions),  # monthly partitions ahead (PostgreSQL)
    Job("prune_event_ids", prune_event_ids),  # past the deduplication horizon
    Job("raw_event_retention", drop_old_raw_events),  # past CREDITGATE_RAW_EVENT_RETENTION_MONTHS
)
NAMES: tuple[str, ...] = tuple(job.name for job in JOBS)
__all__ = [
    "JOBS",
    "NAMES",
    "Job",
    "deliver_webhooks",
    "expire_grants",
    "run_forever",
    "run_once",
    "run_usage_applier",
]
