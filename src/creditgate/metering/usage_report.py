"""SQL behind the usage pages of the portal and the console: an account's spend per hour or
day bucket and per model, read from the rollups, and the spend of many accounts since a day
boundary (month to date). Amounts are ledger units."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.errors import ValidationError
from creditgate.metering.models import usage_rollups

GRANULARITIES = ("hour", "day")


@dataclass(frozen=True, slots=True)
class BucketSpend:
    """One model's usage inside one hour or UTC day."""

    bucket_start: datetime
    provider: str
    model: str
    events: int
    cost: int


async def spend_by_bucket_and_model(
    conn: AsyncConnection, account_id: str, granularity: str, start: datetime, end: datetime
) -> list[BucketSpend]:
    """The rollup rows of one account with a bucket in [start, end), oldest bucket first;
    buckets without usage are absent."""
    if granularity not in GRANULARITIES:
        raise ValidationError("granularity must be hour or day", field="granularity")
    c = usage_rollups.c
    stmt = (
        select(c.bucket_start, c.provider, c.model, c.events, c.cost)
        .where(
            c.account_id == account_id,
            c.granularity == granularity,
            c.bucket_start >= start,
            c.bucket_start < end,
        )
        .order_by(c.bucket_start, c.provider, c.model)
    )
    return [
        BucketSpend(r.bucket_start, r.provider, r.model, int(r.events), int(r.cost))
        for r in await conn.execute(stmt)
    ]


async def spend_since(conn: AsyncConnection, account_ids: Iterable[str], start: datetime) -> dict[str, int]:
    """Usage cost per account from the UTC day that begins at `start` on (today included);
    accounts without usage are absent."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    c = usage_rollups.c
    stmt = (
        select(c.account_id, func.sum(c.cost).label("cost"))
        .where(c.account_id.in_(ids), c.granularity == "day", c.bucket_start >= start)
        .group_by(c.account_id)
    )
    return {r.account_id: int(r.cost) for r in await conn.execute(stmt)}
