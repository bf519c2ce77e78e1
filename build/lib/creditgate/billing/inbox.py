"""The incoming-webhook inbox and its handler registry.

A verified processor event is stored once (unique on processor + event id) and dispatched
once, in the same transaction, to the handlers registered for its normalised type:

    from creditgate.billing import inbox
    inbox.register("payment.succeeded", complete_topup)   # async (conn, event, now) -> ...

A handler runs inside a savepoint: if it raises, its writes are undone, the event is marked
failed and dispatched again later (by the `webhook_inbox` job, or when the processor sends it
again); once processed it is never dispatched again. A type with no handler is stored and
marked ignored; a handler may return IGNORED for an object it does not know. Handlers must be
idempotent on the object (not the event): a processor may send several events about one
object (invoice.paid and invoice.payment_succeeded), late or out of order.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.inbox_models import webhook_inbox
from creditgate.payments.gateway import ProcessorEvent

log = logging.getLogger("creditgate.billing.inbox")

Handler = Callable[[AsyncConnection, ProcessorEvent, datetime], Awaitable[object]]
IGNORED = "ignored"
# Waits after dispatch attempt 1, 2, ... fails; after the last one the event stays failed.
RETRY_SCHEDULE = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1

_handlers: dict[str, list[Handler]] = {}


def register(event_type: str, handler: Handler) -> Handler:
    """Attach `handler` to a normalised event type (payment.succeeded, payment.failed,
    payment.requires_action, refund.succeeded, card.saved, invoice.paid, other). Handlers of
    one type run in registration order. Usable as a plain call; returns the handler."""
    found = _handlers.setdefault(event_type, [])
    if handler not in found:
        found.append(handler)
    return handler


def unregister(event_type: str, handler: Handler) -> None:
    found = _handlers.get(event_type, [])
    if handler in found:
        found.remove(handler)


@contextmanager
def registered(event_type: str, handler: Handler) -> Iterator[Handler]:
    """Register for the duration of a block (tests)."""
    register(event_type, handler)
    try:
        yield handler
    finally:
        unregister(event_type, handler)


def event_to_json(event: ProcessorEvent) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    data["metadata"] = dict(event.metadata)
    return data


def event_from_json(data: Mapping[str, Any]) -> ProcessorEvent:
    known = {f.name for f in dataclasses.fields(ProcessorEvent)}
    return ProcessorEvent(**{k: v for k, v in data.items() if k in known})


def _insert(conn: AsyncConnection) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(webhook_inbox)


def _key(processor: str, event_id: str) -> Any:
    return (webhook_inbox.c.processor == processor) & (webhook_inbox.c.event_id == event_id)


async def receive(conn: AsyncConnection, processor: str, event: ProcessorEvent, now: datetime) -> str:
    """Store a verified event (once) and dispatch it (once). Returns processed, ignored,
    failed, or duplicate when it was already processed or ignored."""
    stmt = (
        _insert(conn)
        .values(
            processor=processor,
            event_id=event.id,
            type=event.type,
            raw_type=event.raw_type[:128],
            object_id=event.object_id,
            payment_id=event.payment_id,
            event=event_to_json(event),
            status="received",
            attempts=0,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["processor", "event_id"])
    )
    await conn.execute(stmt)
    # A concurrent copy of the same event waits here until the first one commits.
    lookup = select(webhook_inbox.c.status).where(_key(processor, event.id))
    if conn.dialect.name == "postgresql":
        lookup = lookup.with_for_update()
    status = (await conn.execute(lookup)).scalar_one()
    if status in ("processed", "ignored"):
        return "duplicate"
    return await _dispatch(conn, processor, event, now)


async def _dispatch(conn: AsyncConnection, processor: str, event: ProcessorEvent, now: datetime) -> str:
    handlers = list(_handlers.get(event.type, ()))
    row = select(webhook_inbox.c.attempts).where(_key(processor, event.id))
    attempts = int((await conn.execute(row)).scalar_one()) + 1
    values: dict[str, Any] = {"attempts": attempts, "error": None, "next_attempt_at": None}
    try:
        async with conn.begin_nested():
            outcomes = [await handler(conn, event, now) for handler in handlers]
    except Exception as exc:
        log.exception("webhook %s %s (%s): handler failed", processor, event.id, event.raw_type)
        retry = now + RETRY_SCHEDULE[attempts - 1] if attempts < MAX_ATTEMPTS else None
        values.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:1000], next_attempt_at=retry)
    else:
        ignored = all(outcome == IGNORED for outcome in outcomes)
        values.update(status="ignored" if ignored else "processed", processed_at=now)
    await conn.execute(update(webhook_inbox).where(_key(processor, event.id)).values(**values))
    return str(values["status"])


async def retry_due(conn: AsyncConnection, now: datetime, *, limit: int = 20) -> int:
    """Dispatch failed events whose retry time has come; returns how many were tried. On
    PostgreSQL rows are taken with SKIP LOCKED, so two workers never try the same one."""
    stmt = (
        select(webhook_inbox.c.processor, webhook_inbox.c.event_id, webhook_inbox.c.event)
        .where(webhook_inbox.c.status == "failed", webhook_inbox.c.next_attempt_at <= now)
        .order_by(webhook_inbox.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(await conn.execute(stmt))
    for row in rows:
        await _dispatch(conn, row.processor, event_from_json(row.event), now)
    return len(rows)


async def list_events(
    conn: AsyncConnection, *, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest first, for the admin API."""
    stmt = select(webhook_inbox)
    if status is not None:
        stmt = stmt.where(webhook_inbox.c.status == status)
    stmt = stmt.order_by(webhook_inbox.c.received_at.desc(), webhook_inbox.c.event_id).limit(limit)
    return [inbox_view(r) for r in await conn.execute(stmt)]


def inbox_view(row: Any) -> dict[str, Any]:
    return {
        "processor": row.processor,
        "event_id": row.event_id,
        "type": row.type,
        "raw_type": row.raw_type,
        "object_id": row.object_id,
        "payment_id": row.payment_id,
        "status": row.status,
        "attempts": row.attempts,
        "error": row.error,
        "received_at": row.received_at.isoformat(),
        "processed_at": row.processed_at.isoformat() if row.processed_at else None,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
    }
