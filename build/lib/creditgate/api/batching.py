"""Per-process batching of concurrent gateway writes (authorize, settle).

A request that arrives while its kind's batch is running waits for the next one; a batch is one
unit of work (one statement in autocommit mode for authorize on PostgreSQL, one transaction for
settle), so it pays one round trip, one commit and one WAL flush instead of one per request. The
database still decides every request under its row locks, taken in id order, so zero overspend
and deadlock freedom are unchanged. Each request gets its own result or error; a failure of the
unit of work itself fails every request of that batch. At most one batch per kind is in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger("creditgate.api")
MAX_BATCH = 256

Item = TypeVar("Item")
Result = TypeVar("Result")
Run = Callable[[AsyncConnection, list[Item]], Awaitable[list[Any]]]


class Batcher(Generic[Item, Result]):
    """`run(conn, items)` returns, per item, its Result or the exception to raise for it."""

    def __init__(
        self, unit: Callable[[], AbstractAsyncContextManager[AsyncConnection]], run: Run[Item]
    ) -> None:
        self._unit = unit
        self._run = run
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._task: asyncio.Task[None] | None = None  # kept referenced while it runs

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    async with self._unit() as conn:
                        results = await self._run(conn, [item for item, _ in batch])
                except Exception as exc:
                    log.exception("batch of %d failed", len(batch))
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._task = None
