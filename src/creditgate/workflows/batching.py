"""Per-process batching of concurrent writes into shared units of work, with one failure policy.

Requests of one kind (usage batches, authorizes, settles) that arrive while units of work of
that kind are running wait for the next one; everything waiting (up to `max_weight`) then runs
as one unit of work (a transaction, or one autocommit statement), so a group pays one round
trip, one commit and one WAL flush instead of one per request. With a single request waiting
nothing is delayed. At most `in_flight` units per batcher run at once (default 1). More than one
matters where a unit's time is mostly the commit's WAL flush (an fsync, milliseconds, no CPU):
with one in flight every request queued behind the previous group's fsync, while concurrent
units' commits share flushes (PostgreSQL's group commit); see docs/performance.md. The
database still decides every request under its row locks, so zero overspend and deadlock
freedom are unchanged (concurrent units are the same as concurrent processes).

The failure policy (the same for every batcher): `run(conn, items)` answers each member with
its result or its own error. When the unit of work itself fails (an exception, so it rolled
back and wrote nothing), no member is failed for it: each member is run again alone in its own
unit of work, so only a bad member gets its error and the others get their correct results.
So a unit of work must be atomic (one transaction, or one statement in autocommit mode): a
failed group has written nothing, and running its members again is their first run.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger("creditgate.batching")

Item = TypeVar("Item")
Result = TypeVar("Result")
Unit = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class Batcher(Generic[Item, Result]):
    """`submit(item)` returns the item's own result, or raises its own error.

    `unit()` opens one unit of work; `run(conn, items)` does the work for a group inside it and
    returns, per item in order, its Result or the Exception to raise for it. `weight(item)`
    counts toward `max_weight` per group (a group always takes at least one item)."""

    def __init__(
        self,
        unit: Unit,
        run: Callable[[AsyncConnection, list[Item]], Awaitable[Sequence[Result | Exception]]],
        *,
        max_weight: int = 256,
        weight: Callable[[Item], int] | None = None,
        name: str = "batch",
        in_flight: int = 1,
    ) -> None:
        self._unit = unit
        self._run = run
        self._max_weight = max_weight
        self._weight = weight
        self._name = name
        self._in_flight = max(1, in_flight)
        self._pending: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()  # the running drains, kept referenced

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if sum(not task.done() for task in self._tasks) < self._in_flight:
            task = loop.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    def _take_group(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        pending, weigh, limit = self._pending, self._weight, self._max_weight
        group: list[tuple[Item, asyncio.Future[Result]]] = []
        total = 0
        while pending:
            item, future = pending[0]
            size = 1 if weigh is None else max(1, weigh(item))
            if group and total + size > limit:
                break
            pending.popleft()
            if future.done():  # the request went away before its turn
                continue
            group.append((item, future))
            total += size
        return group

    async def _drain(self) -> None:
        while self._pending:
            group = self._take_group()
            if group:
                await self._store(group)

    async def _store(self, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._unit_of_work([item for item, _ in group])
        except asyncio.CancelledError:  # the process is stopping: nobody is left to answer
            for _, future in group:
                future.cancel()
            raise
        except Exception as exc:
            if len(group) == 1:
                _answer(group[0][1], exc)
                return
            log.warning(
                "a %s group of %d failed (%r); running each member alone", self._name, len(group), exc
            )
            for item, future in group:
                try:
                    (result,) = await self._unit_of_work([item])
                except Exception as single:
                    result = single
                _answer(future, result)
            return
        for (_, future), result in zip(group, results, strict=True):
            _answer(future, result)

    async def _unit_of_work(self, items: list[Item]) -> Sequence[Result | Exception]:
        async with self._unit() as conn:
            results = await self._run(conn, items)
            if len(results) != len(items):  # checked before the commit, so it rolls back
                raise RuntimeError(f"{self._name}: {len(results)} results for {len(items)} items")
        return results


def _answer(future: asyncio.Future[Result], outcome: Result | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
