"""Group commit for usage ingestion: concurrent requests in one process share a transaction.

Each request validates its batch itself (in its own task), then queues it and waits. One
writer task per process drains the queue: everything waiting (up to MAX_GROUP_EVENTS events)
is stored in a single transaction by `metering.ingest_parsed`, exactly as if the batches had
been ingested one after the other. Under load this amortizes the transaction, the account
locks and every statement over many requests; with a single request waiting nothing is
delayed. If a group fails (say one batch would push a balance past its bound), every batch
of the group is retried alone, so a bad batch fails only its own request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from creditgate.api.auto_topup_hook import queue_auto_topups
from creditgate.api.state import Services
from creditgate.metering import service as metering

log = logging.getLogger("creditgate.ingest")

MAX_GROUP_EVENTS = 2000


@dataclass
class _Pending:
    batch: metering.ParsedBatch
    future: asyncio.Future[metering.IngestResult]
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = max(1, len(self.batch.events))


class IngestQueue:
    """One per app (per process). `submit` returns the batch's own result or raises its error."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.pending: list[_Pending] = []
        self.writer: asyncio.Task[None] | None = None

    async def submit(self, batch: metering.ParsedBatch) -> metering.IngestResult:
        future: asyncio.Future[metering.IngestResult] = asyncio.get_running_loop().create_future()
        self.pending.append(_Pending(batch, future))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._drain())
        return await future

    def _take_group(self) -> list[_Pending]:
        group: list[_Pending] = []
        events = 0
        while self.pending and (not group or events + self.pending[0].size <= MAX_GROUP_EVENTS):
            item = self.pending.pop(0)
            if item.future.done():  # the request went away
                continue
            group.append(item)
            events += item.size
        return group

    async def _drain(self) -> None:
        while self.pending:
            group = self._take_group()
            if group:
                await self._store(group)

    async def _store(self, group: list[_Pending]) -> None:
        try:
            results = await self._transaction(group)
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0], exc)
                return
            log.info("a group of %d batches failed (%s); storing them one by one", len(group), exc)
            for item in group:
                try:
                    (result,) = await self._transaction([item])
                except Exception as single:
                    _settle(item, single)
                else:
                    _settle(item, result)
            return
        for item, result in zip(group, results, strict=True):
            _settle(item, result)

    async def _transaction(self, group: list[_Pending]) -> list[metering.IngestResult]:
        svc = self.svc
        now = svc.clock()
        async with svc.db.write() as conn:
            results = await metering.ingest_parsed(conn, [item.batch for item in group], svc.catalog, now)
            debited: dict[str, int] = {}
            for result in results:
                for account_id, units in result.charged.items():
                    debited[account_id] = debited.get(account_id, 0) + units
            await queue_auto_topups(svc, conn, debited, now)
            return results


def _settle(item: _Pending, outcome: metering.IngestResult | BaseException) -> None:
    if item.future.done():
        return
    if isinstance(outcome, BaseException):
        item.future.set_exception(outcome)
    else:
        item.future.set_result(outcome)


def queue_for(svc: Services) -> IngestQueue:
    queue = svc.extras.get("ingest_queue")
    if not isinstance(queue, IngestQueue):
        queue = svc.extras["ingest_queue"] = IngestQueue(svc)
    return queue
