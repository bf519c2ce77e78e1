"""The usage applier: turn stored-but-unapplied usage into the ledger debit, rollups and spend.

Ingest stores each event once and queues what it owes in `usage_pending` (summed per account,
hour, provider and model), then answers. `apply_pending` claims queued rows (deleting them),
locks their accounts in id order, posts one usage entry per account, adds the hour and day
rollups and records the spend in the limit windows at the minute the usage was stored, all in
the caller's transaction: a crash before the commit gives the rows back, a commit applies them
exactly once. Balance reads and authorize count the rows still queued (`usage_pending`), so
nothing is missing from a balance while it waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.ledger import service as ledger
from creditgate.limits import service as limits
from creditgate.limits.windows import floor_minute
from creditgate.metering import repository as repo

APPLY_BATCH = 5000  # pending rows per transaction (each sums one or many events)
_SUMS = ("events", "input_tokens", "output_tokens", "cached_tokens", "cost")


async def apply_pending(
    conn: AsyncConnection,
    now: datetime,
    *,
    limit: int = APPLY_BATCH,
    ids: list[int] | None = None,
    accounts: list[str] | None = None,
) -> dict[str, int]:
    """Apply the pending rows `ids` (of `accounts`), or the oldest `limit` no other applier
    holds, in the caller's transaction. Returns the units debited per account (none: nothing
    to apply)."""
    rows = await repo.claim_pending(conn, limit=limit, ids=ids, accounts=accounts)
    if not rows:
        return {}
    charged: dict[str, int] = {}
    spent: dict[datetime, dict[str, int]] = {}
    for row in rows:
        account_id, cost = row[0], int(row[10])
        charged[account_id] = charged.get(account_id, 0) + cost
        in_minute = spent.setdefault(floor_minute(row[1]), {})
        in_minute[account_id] = in_minute.get(account_id, 0) + cost
    balances = await ledger.lock(conn, charged)
    postings = [
        ledger.Posting(account_id=a, kind="usage", amount=-cost, reason="usage")
        for a, cost in sorted(charged.items())
        if cost > 0
    ]
    await ledger.post(conn, postings, now, locked=balances)
    await repo.add_to_hourly_rollups(conn, _hours(rows))
    for minute, amounts in sorted(spent.items()):
        await limits.record_spend(conn, amounts, minute)
    return charged


def _hours(rows: Sequence[Any]) -> dict[str, list[Any]]:
    """The claimed rows summed per (account, hour, provider, model, api key), column-wise: rows
    queued by different transactions can share a key, and one upsert must not touch a row twice."""
    sums: dict[tuple[str, datetime, str, str, str], list[int]] = {}
    for row in rows:
        key = (row[0], row[2], row[3], row[4], row[5])
        values = [int(v) for v in row[6:11]]
        acc = sums.get(key)
        if acc is None:
            sums[key] = values
        else:
            for i, value in enumerate(values):
                acc[i] += value
    columns: dict[str, list[Any]] = {
        name: [] for name in ("account_id", "bucket_start", "provider", "model", "api_key_id", *_SUMS)
    }
    for (account_id, start, provider, model, api_key_id), values in sums.items():
        columns["account_id"].append(account_id)
        columns["bucket_start"].append(start)
        columns["provider"].append(provider)
        columns["model"].append(model)
        columns["api_key_id"].append(api_key_id)
        for name, value in zip(_SUMS, values, strict=True):
            columns[name].append(value)
    return columns


async def pending_since(conn: AsyncConnection) -> datetime | None:
    """When the oldest usage still waiting was stored (None: the applier is caught up)."""
    return await repo.oldest_pending(conn)
