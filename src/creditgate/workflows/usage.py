"""Usage ingest: validate a reported batch, then store it by group commit with the others waiting.

Each request validates its batch itself (in its own task, yielding to the event loop), then
queues it and waits. One writer per process stores everything waiting (up to MAX_GROUP_EVENTS
events) in one transaction with `metering.store_parsed`, exactly as if the batches had been
ingested one after the other: each event once, and what it owes queued in `usage_pending`.
With CREDITGATE_USAGE_APPLY=deferred (the default) that is all the request waits for: the
usage applier (workflows/apply_usage.py) posts the debit, rollups and spend and queues auto
top-ups off the request path, woken by the answer; balance reads and authorize count what
waits. With `inline` the same apply runs in the group's transaction before the answer. Under
load the group amortizes the transaction and every statement over many requests. A group that
fails is retried member by member (workflows/batching.py), so a bad batch (say one that would
push a balance past its bound) fails only its own request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.metering import service as metering
from creditgate.metering.service import IngestResult, ParsedBatch
from creditgate.workflows.batching import Batcher
from creditgate.workflows.debits import after_debits

if TYPE_CHECKING:
    from creditgate.workflows.context import Context

MAX_GROUP_EVENTS = 2000
# Groups stored at once on PostgreSQL: while one waits on the database (its statement, its
# commit's WAL flush) the next is built and sent. Each inserts its ids in key order, so two
# groups with an id in common wait for each other instead of deadlocking.
IN_FLIGHT = 2

UsageQueue = Batcher[ParsedBatch, IngestResult]


def usage_queue(ctx: Context) -> UsageQueue:
    """The process's group-commit queue for usage batches (built once, with the Context)."""
    inline = ctx.settings.usage_apply == "inline"

    async def store(conn: AsyncConnection, batches: list[ParsedBatch]) -> list[IngestResult]:
        now = ctx.clock()
        if not inline:
            return (await metering.store_parsed(conn, batches, ctx.catalog, now))[0]
        results = await metering.ingest_parsed(conn, batches, ctx.catalog, now)  # store + apply
        await after_debits(ctx, conn, (debit for r in results for debit in r.charged.items()), now)
        return results

    return Batcher(
        ctx.db.write,
        store,
        max_weight=MAX_GROUP_EVENTS,
        weight=lambda batch: len(batch.events),
        name="usage",
        in_flight=1 if ctx.db.is_sqlite else IN_FLIGHT,  # one writer on SQLite
    )


async def report_usage(ctx: Context, events: Any, caller: Principal) -> IngestResult:
    """Ingest up to 1000 usage events reported by `caller`: each event is stored once per id
    and debited once; per-event rejections are in the result. A batch with nothing valid in it
    skips the database."""
    good, rejected = await metering.parse_batch_yielding(events, caller, ctx.clock())
    if not good:
        return IngestResult(rejected=rejected)
    result = await ctx.usage_queue.submit(ParsedBatch(good, rejected))
    if result.accepted:
        ctx.usage_stored.set()  # committed: wake the in-process applier
    return result
