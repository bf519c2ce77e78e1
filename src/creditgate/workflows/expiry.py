"""Time-driven passes over the books: release expired holds, drop spend too old for any
spending-limit window, and post the expiry of grants whose `expires_at` has passed."""

from __future__ import annotations

from creditgate.clock import Clock
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.limits import service as limits


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


async def prune_spend_buckets(db: Database, clock: Clock) -> int:
    """Drop per-minute spend older than any spending-limit window can reach."""
    async with db.write() as conn:
        return await limits.prune_spend(conn, clock())


async def expire_grants(db: Database, clock: Clock) -> int:
    """Post the expiry entry (the unused remainder, possibly 0) of every grant whose
    `expires_at` has passed; one account per transaction, under its row lock. A second
    runner finds the `expiry:<id>` ref already posted and posts nothing."""
    now = clock()
    async with db.read() as conn:
        due = await ledger.grants_due_to_expire(conn, now)
    posted = 0
    for account_id, grant_ids in due.items():
        async with db.write() as conn:
            posted += await ledger.expire_grants(conn, account_id, grant_ids, now)
    return posted
