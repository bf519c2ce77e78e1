"""SQL for the incoming-webhook inbox (the `webhook_inbox` table). Only billing.inbox imports
this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.inbox_models import webhook_inbox
from creditgate.billing.rows import InboxEvent

_w = webhook_inbox.c


def _key(processor: str, event_id: str) -> ColumnElement[bool]:
    return (_w.processor == processor) & (_w.event_id == event_id)


def _event(row: Row[Any]) -> InboxEvent:
    return InboxEvent(
        processor=row.processor,
        event_id=row.event_id,
        type=row.type,
        raw_type=row.raw_type,
        object_id=row.object_id,
        payment_id=row.payment_id,
        status=row.status,
        attempts=int(row.attempts),
        error=row.error,
        received_at=row.received_at,
        processed_at=row.processed_at,
        next_attempt_at=row.next_attempt_at,
    )


async def insert_once(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Store an event unless its (processor, event_id) is stored already."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(webhook_inbox)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["processor", "event_id"])
    )
    await conn.execute(stmt)


async def status_locked(conn: AsyncConnection, processor: str, event_id: str) -> str:
    """The event's status; on PostgreSQL a concurrent copy of the event waits here until the
    first one commits (row lock)."""
    lookup = select(_w.status).where(_key(processor, event_id))
    if conn.dialect.name == "postgresql":
        lookup = lookup.with_for_update()
    return str((await conn.execute(lookup)).scalar_one())


async def attempts(conn: AsyncConnection, processor: str, event_id: str) -> int:
    return int((await conn.execute(select(_w.attempts).where(_key(processor, event_id)))).scalar_one())


async def update_event(conn: AsyncConnection, processor: str, event_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(webhook_inbox).where(_key(processor, event_id)).values(**values))


async def due_for_retry(conn: AsyncConnection, now: datetime, limit: int) -> list[tuple[str, dict[str, Any]]]:
    """(processor, stored event JSON) of failed events whose retry time has come; on
    PostgreSQL rows another worker holds are skipped."""
    stmt = (
        select(_w.processor, _w.event)
        .where(_w.status == "failed", _w.next_attempt_at <= now)
        .order_by(_w.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [(row.processor, dict(row.event)) for row in await conn.execute(stmt)]


async def list_events(conn: AsyncConnection, *, status: str | None, limit: int) -> list[InboxEvent]:
    """Newest first."""
    stmt = select(webhook_inbox)
    if status is not None:
        stmt = stmt.where(_w.status == status)
    stmt = stmt.order_by(_w.received_at.desc(), _w.event_id).limit(limit)
    return [_event(row) for row in await conn.execute(stmt)]
