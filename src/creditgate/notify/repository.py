"""SQL for outgoing webhooks. Only notify's own modules import this."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.notify.models import webhook_attempts, webhook_deliveries, webhook_endpoints, webhook_events

ACTIVE = ("pending", "delivering")


async def insert_endpoint(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(webhook_endpoints.insert().values(**row))


async def live_endpoints(conn: AsyncConnection) -> list[Any]:
    stmt = (
        select(webhook_endpoints)
        .where(webhook_endpoints.c.deleted_at.is_(None))
        .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
    )
    return list(await conn.execute(stmt))


async def endpoint(conn: AsyncConnection, endpoint_id: str) -> Any:
    stmt = select(webhook_endpoints).where(
        webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.deleted_at.is_(None)
    )
    return (await conn.execute(stmt)).first()


async def delete_endpoint(conn: AsyncConnection, endpoint_id: str, now: datetime) -> bool:
    """Soft-delete (history stays readable) and cancel its unfinished deliveries."""
    result = await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    if result.rowcount == 0:
        return False
    await conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.endpoint_id == endpoint_id, webhook_deliveries.c.status.in_(ACTIVE))
        .values(status="canceled", lease_token=None, next_attempt_at=None, finished_at=now)
    )
    return True


async def insert_event(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(webhook_events.insert().values(**row))


async def insert_deliveries(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(webhook_deliveries.insert(), rows)


async def event(conn: AsyncConnection, event_id: str) -> Any:
    return (await conn.execute(select(webhook_events).where(webhook_events.c.id == event_id))).first()


async def list_events(
    conn: AsyncConnection, *, account_id: str | None, event_type: str | None, before: str | None, limit: int
) -> list[Any]:
    stmt = select(webhook_events)
    if account_id is not None:
        stmt = stmt.where(webhook_events.c.account_id == account_id)
    if event_type is not None:
        stmt = stmt.where(webhook_events.c.type == event_type)
    if before is not None:
        anchor = await event(conn, before)
        if anchor is not None:
            stmt = stmt.where(
                (webhook_events.c.created_at < anchor.created_at)
                | and_(webhook_events.c.created_at == anchor.created_at, webhook_events.c.id < anchor.id)
            )
    stmt = stmt.order_by(webhook_events.c.created_at.desc(), webhook_events.c.id.desc()).limit(limit)
    return list(await conn.execute(stmt))


async def deliveries_of(conn: AsyncConnection, event_ids: Sequence[str]) -> list[Any]:
    if not event_ids:
        return []
    stmt = (
        select(webhook_deliveries, webhook_endpoints.c.url)
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
        .where(webhook_deliveries.c.event_id.in_(event_ids))
        .order_by(webhook_deliveries.c.id)
    )
    return list(await conn.execute(stmt))


async def attempts_of(conn: AsyncConnection, event_id: str) -> list[Any]:
    stmt = (
        select(webhook_attempts)
        .where(webhook_attempts.c.event_id == event_id)
        .order_by(webhook_attempts.c.id)
    )
    return list(await conn.execute(stmt))


async def redeliver(conn: AsyncConnection, event_id: str, now: datetime) -> int:
    """Make the event's finished deliveries to live endpoints due again (attempts restart)."""
    live = select(webhook_endpoints.c.id).where(webhook_endpoints.c.deleted_at.is_(None))
    result = await conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.event_id == event_id,
            webhook_deliveries.c.status.in_(("succeeded", "failed")),
            webhook_deliveries.c.endpoint_id.in_(live.scalar_subquery()),
        )
        .values(status="pending", attempts=0, next_attempt_at=now, finished_at=None, lease_token=None)
    )
    return int(result.rowcount or 0)


async def give_up_on_lost(conn: AsyncConnection, now: datetime, max_attempts: int) -> None:
    """Leases that expired on their last allowed attempt (the worker died): failed."""
    await conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.status == "delivering",
            webhook_deliveries.c.next_attempt_at <= now,
            webhook_deliveries.c.attempts >= max_attempts,
        )
        .values(
            status="failed",
            lease_token=None,
            next_attempt_at=None,
            finished_at=now,
            last_error="the worker stopped during the last attempt (lease expired)",
        )
    )


async def due_ids(conn: AsyncConnection, now: datetime, limit: int, max_attempts: int) -> list[int]:
    """Due deliveries, oldest first; on PostgreSQL locked with SKIP LOCKED so two workers
    take disjoint batches (SQLite writers are already serialized)."""
    stmt = (
        select(webhook_deliveries.c.id)
        .where(
            webhook_deliveries.c.status.in_(ACTIVE),
            webhook_deliveries.c.next_attempt_at <= now,
            webhook_deliveries.c.attempts < max_attempts,
        )
        .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [row.id for row in await conn.execute(stmt)]


async def lease(conn: AsyncConnection, ids: list[int], token: str, until: datetime, now: datetime) -> None:
    """Claim: count the attempt now (a lost attempt still counts) and hide it until `until`."""
    await conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.id.in_(ids),
            webhook_deliveries.c.status.in_(ACTIVE),
            webhook_deliveries.c.next_attempt_at <= now,
        )
        .values(
            status="delivering",
            lease_token=token,
            next_attempt_at=until,
            attempts=webhook_deliveries.c.attempts + 1,
        )
    )


async def leased(conn: AsyncConnection, token: str) -> list[Any]:
    stmt = (
        select(
            webhook_deliveries.c.id,
            webhook_deliveries.c.account_id,
            webhook_deliveries.c.event_id,
            webhook_deliveries.c.endpoint_id,
            webhook_deliveries.c.attempts,
            webhook_endpoints.c.url,
            webhook_endpoints.c.secret,
            webhook_events.c.body,
        )
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
        .join(
            webhook_events,
            and_(
                webhook_events.c.id == webhook_deliveries.c.event_id,
                webhook_events.c.account_id == webhook_deliveries.c.account_id,
            ),
        )
        .where(webhook_deliveries.c.lease_token == token)
        .order_by(webhook_deliveries.c.id)
    )
    return list(await conn.execute(stmt))


async def insert_attempt(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(webhook_attempts.insert().values(**row))


async def finish(
    conn: AsyncConnection, delivery_id: int, account_id: str, token: str, values: dict[str, Any]
) -> bool:
    """Settle a leased delivery, only if this worker still holds the lease."""
    result = await conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.id == delivery_id,
            webhook_deliveries.c.account_id == account_id,
            webhook_deliveries.c.lease_token == token,
            webhook_deliveries.c.status == "delivering",
        )
        .values(lease_token=None, **values)
    )
    return bool(result.rowcount)
