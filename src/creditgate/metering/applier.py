"""The usage applier: turn stored-but-unapplied usage into the ledger debit, rollups and spend.

Ingest stores each event once and queues what it owes in `usage_pending` (summed per account,
hour, provider and model), then answers. `apply_pending` claims queued rows (row locks),
locks their accounts in id order, posts one usage entry per account, deletes the rows while
adding them to the hour and day rollups, and records the spend in the limit windows at the
minute the usage was stored, all in
the caller's transaction: a crash before the commit gives the rows back, a commit applies them
exactly once. Balance reads and authorize count the rows still queued (`usage_pending`), so
nothing is missing from a balance while it waits.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.ledger import service as ledger
from creditgate.limits import service as limits
from creditgate.metering import repository as repo

APPLY_BATCH = 5000  # pending rows per transaction (each sums one or many events)


class Applied(NamedTuple):
    charged: dict[str, int]  # units debited per account
    rows: int  # queued rows taken (each sums one or many events)


async def apply_pending(
    conn: AsyncConnection,
    now: datetime,
    *,
    limit: int = APPLY_BATCH,
    rows: list[tuple[int, str]] | None = None,
) -> Applied:
    """Apply the pending `rows` given as (id, account_id), or the oldest `limit` no other
    applier holds, in the caller's transaction. Returns the units debited per account (none: nothing
    to apply) and how many rows it took. The accounts are locked (id order) before any rollup
    row, as every writer of both does, so concurrent appliers and settles cannot deadlock."""
    claimed = await repo.claim(conn, limit=limit, rows=rows)
    charged = claimed.charged
    if not charged:
        return Applied({}, 0)
    balances = await ledger.lock(conn, charged)
    postings = [
        ledger.Posting(account_id=a, kind="usage", amount=-cost, reason="usage")
        for a, cost in sorted(charged.items())
        if cost > 0
    ]
    await ledger.post(conn, postings, now, locked=balances)
    await repo.add_to_hourly_rollups(conn, claimed)
    for minute, amounts in sorted(claimed.spent.items()):
        await limits.record_spend(conn, amounts, minute)
    return Applied(charged, len(claimed.ids))


async def pending_since(conn: AsyncConnection) -> datetime | None:
    """When the oldest usage still waiting was stored (None: the applier is caught up)."""
    return await repo.oldest_pending(conn)


async def reclaim_queue(conn: AsyncConnection) -> None:
    """Give the space of applied rows back to the queue (`conn` in autocommit)."""
    await repo.vacuum_queue(conn)
