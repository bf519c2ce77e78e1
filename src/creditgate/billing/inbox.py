"""The incoming-webhook inbox: each verified processor event stored once and dispatched once.

The caller passes the handlers to dispatch to: a mapping from a normalised event type to
async `(conn, event, now)` functions. Billing's own are `inbox_handlers.billing_handlers()`,
which the webhook route and the `webhook_inbox` job pass in:

    await inbox.receive(conn, "stripe", event, now, inbox_handlers.billing_handlers())

An event is stored unique on processor + event id and dispatched in the same transaction.
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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import inbox_repo as repo
from creditgate.billing.rows import InboxEvent
from creditgate.payments.gateway import ProcessorEvent

log = logging.getLogger("creditgate.billing.inbox")

Handler = Callable[[AsyncConnection, ProcessorEvent, datetime], Awaitable[object]]
# normalised event type (payment.succeeded, payment.failed, payment.requires_action,
# refund.succeeded, card.saved, invoice.paid, other) -> its handlers, run in order
Handlers = Mapping[str, Sequence[Handler]]
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


def event_to_json(event: ProcessorEvent) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    data["metadata"] = dict(event.metadata)
    return data


def event_from_json(data: Mapping[str, Any]) -> ProcessorEvent:
    known = {f.name for f in dataclasses.fields(ProcessorEvent)}
    return ProcessorEvent(**{k: v for k, v in data.items() if k in known})


async def receive(
    conn: AsyncConnection, processor: str, event: ProcessorEvent, now: datetime, handlers: Handlers
) -> str:
    """Store a verified event (once) and dispatch it (once) to `handlers`. Returns processed,
    ignored, failed, or duplicate when it was already processed or ignored."""
    await repo.insert_once(
        conn,
        {
            "processor": processor,
            "event_id": event.id,
            "type": event.type,
            "raw_type": event.raw_type[:128],
            "object_id": event.object_id,
            "payment_id": event.payment_id,
            "event": event_to_json(event),
            "status": "received",
            "attempts": 0,
            "received_at": now,
        },
    )
    if await repo.status_locked(conn, processor, event.id) in ("processed", "ignored"):
        return "duplicate"
    return await _dispatch(conn, processor, event, now, handlers)


async def _dispatch(
    conn: AsyncConnection, processor: str, event: ProcessorEvent, now: datetime, handlers: Handlers
) -> str:
    attempts = await repo.attempts(conn, processor, event.id) + 1
    values: dict[str, Any] = {"attempts": attempts, "error": None, "next_attempt_at": None}
    try:
        async with conn.begin_nested():
            outcomes = [await handler(conn, event, now) for handler in handlers.get(event.type, ())]
    except Exception as exc:
        log.exception("webhook %s %s (%s): handler failed", processor, event.id, event.raw_type)
        retry = now + RETRY_SCHEDULE[attempts - 1] if attempts < MAX_ATTEMPTS else None
        values.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:1000], next_attempt_at=retry)
    else:
        ignored = all(outcome == IGNORED for outcome in outcomes)
        values.update(status="ignored" if ignored else "processed", processed_at=now)
    await repo.update_event(conn, processor, event.id, values)
    return str(values["status"])


async def retry_due(conn: AsyncConnection, now: datetime, handlers: Handlers, *, limit: int = 20) -> int:
    """Dispatch failed events whose retry time has come; returns how many were tried. On
    PostgreSQL rows are taken with SKIP LOCKED, so two workers never try the same one."""
    due = await repo.due_for_retry(conn, now, limit)
    for processor, data in due:
        await _dispatch(conn, processor, event_from_json(data), now, handlers)
    return len(due)


async def list_events(
    conn: AsyncConnection, *, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest first, for the admin API."""
    return [_view(e) for e in await repo.list_events(conn, status=status, limit=limit)]


def _view(event: InboxEvent) -> dict[str, Any]:
    return {
        "processor": event.processor,
        "event_id": event.event_id,
        "type": event.type,
        "raw_type": event.raw_type,
        "object_id": event.object_id,
        "payment_id": event.payment_id,
        "status": event.status,
        "attempts": event.attempts,
        "error": event.error,
        "received_at": event.received_at.isoformat(),
        "processed_at": event.processed_at.isoformat() if event.processed_at else None,
        "next_attempt_at": event.next_attempt_at.isoformat() if event.next_attempt_at else None,
    }
