"""Outgoing webhooks: deliver the due ones and record every attempt."""

from __future__ import annotations

from creditgate.clock import Clock
from creditgate.db import Database
from creditgate.notify import delivery


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
