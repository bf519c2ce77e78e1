"""SQL for metering. Only metering's own modules import this."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.metering.models import prices, usage_events, usage_rollups


def _insert(conn: AsyncConnection, table: Any) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


async def catalog_version(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.coalesce(func.max(prices.c.id), 0)))).scalar_one())


async def all_prices(conn: AsyncConnection) -> list[Any]:
    stmt = select(prices).order_by(prices.c.provider, prices.c.model, prices.c.effective_from)
    return list(await conn.execute(stmt))


async def insert_prices(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(prices.insert(), rows)


async def insert_new_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Insert events, skipping ids already stored. Returns the (account_id, event_id) inserted."""
    if not rows:
        return set()
    stmt = (
        _insert(conn, usage_events)
        .on_conflict_do_nothing(index_elements=["account_id", "event_id"])
        .returning(usage_events.c.account_id, usage_events.c.event_id)
    )
    result = await conn.execute(stmt, rows)
    return {(r.account_id, r.event_id) for r in result}


async def add_to_rollups(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Upsert-add rollup rows (already aggregated per key), in key order."""
    if not rows:
        return
    rows.sort(key=lambda r: (r["account_id"], r["granularity"], r["bucket_start"], r["provider"], r["model"]))
    stmt = _insert(conn, usage_rollups)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id", "granularity", "bucket_start", "provider", "model"],
        set_={
            name: usage_rollups.c[name] + excluded[name]
            for name in ("events", "input_tokens", "output_tokens", "cached_tokens", "cost")
        },
    )
    await conn.execute(stmt, rows)


async def rollups(
    conn: AsyncConnection,
    account_id: str,
    granularity: str,
    start: datetime,
    end: datetime,
) -> list[Any]:
    """Rollup rows of one account in [start, end), summed over provider/model per bucket."""
    stmt = (
        select(
            usage_rollups.c.bucket_start,
            func.sum(usage_rollups.c.events).label("events"),
            func.sum(usage_rollups.c.cost).label("cost"),
        )
        .where(
            usage_rollups.c.account_id == account_id,
            usage_rollups.c.granularity == granularity,
            usage_rollups.c.bucket_start >= start,
            usage_rollups.c.bucket_start < end,
        )
        .group_by(usage_rollups.c.bucket_start)
        .order_by(usage_rollups.c.bucket_start)
    )
    return list(await conn.execute(stmt))


async def rollups_by_model(
    conn: AsyncConnection, account_id: str, granularity: str, start: datetime, end: datetime
) -> list[Any]:
    """Totals per provider/model for one account over [start, end)."""
    c = usage_rollups.c
    stmt = (
        select(
            c.provider,
            c.model,
            func.sum(c.events).label("events"),
            func.sum(c.input_tokens).label("input_tokens"),
            func.sum(c.output_tokens).label("output_tokens"),
            func.sum(c.cached_tokens).label("cached_tokens"),
            func.sum(c.cost).label("cost"),
        )
        .where(
            c.account_id == account_id,
            c.granularity == granularity,
            c.bucket_start >= start,
            c.bucket_start < end,
        )
        .group_by(c.provider, c.model)
        .order_by(c.provider, c.model)
    )
    return list(await conn.execute(stmt))


async def usage_totals(conn: AsyncConnection) -> dict[str, int]:
    """Sum of event costs per account (for reconcile)."""
    stmt = select(usage_events.c.account_id, func.sum(usage_events.c.cost)).group_by(
        usage_events.c.account_id
    )
    return {row[0]: int(row[1]) for row in await conn.execute(stmt)}


async def list_events(
    conn: AsyncConnection, account_id: str, *, limit: int, event_ids: Sequence[str] | None = None
) -> list[Any]:
    stmt = select(usage_events).where(usage_events.c.account_id == account_id)
    if event_ids is not None:
        stmt = stmt.where(usage_events.c.event_id.in_(list(event_ids)))
    stmt = stmt.order_by(usage_events.c.occurred_at.desc()).limit(limit)
    return list(await conn.execute(stmt))
