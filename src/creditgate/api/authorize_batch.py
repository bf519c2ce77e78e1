"""Per-process batching of concurrent authorize calls (PostgreSQL).

Each authorize on PostgreSQL is one statement, but a statement per request still pays a round
trip, a commit and a WAL flush each. Requests that arrive while a batch is running wait for the
next one; a batch is decided by one `creditgate_authorize_many` statement in autocommit mode,
which locks the accounts in id order and applies exactly the single-request rules, one request
after another. Zero overspend is unchanged: the database decides every request under the
account's row lock. At most one batch per process is in flight.
"""

from __future__ import annotations

import asyncio
import logging

from creditgate.db import Database
from creditgate.errors import NotFound
from creditgate.limits import service as limits

log = logging.getLogger("creditgate.api")
MAX_BATCH = 256


class AuthorizeBatcher:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[limits.HoldRequest, asyncio.Future[limits.Decision]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None  # kept referenced while it runs

    async def submit(self, request: limits.HoldRequest) -> limits.Decision:
        future: asyncio.Future[limits.Decision] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if not self._running:
            self._running = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    async with self.db.single() as conn:
                        results = await limits.authorize_many(conn, [r for r, _ in batch])
                except Exception as exc:  # every caller in the batch gets the failure
                    log.exception("authorize batch of %d failed", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, NotFound):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._running = False
