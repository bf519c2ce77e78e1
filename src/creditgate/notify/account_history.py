"""The outgoing webhooks of one account as typed rows for the operator console: its events,
newest first, each with its deliveries and every attempt of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.notify import repository as repo
from creditgate.notify.models import webhook_attempts


@dataclass(frozen=True)
class Attempt:
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    succeeded: bool
    error: str | None


@dataclass(frozen=True)
class Delivery:
    id: int
    url: str
    status: str  # pending | delivering | succeeded | failed | canceled
    attempts: int
    next_attempt_at: datetime | None  # only while pending or delivering
    last_status_code: int | None
    last_error: str | None
    finished_at: datetime | None
    attempt_log: list[Attempt]


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created_at: datetime
    deliveries: list[Delivery]


async def _attempts(conn: AsyncConnection, event_ids: list[str]) -> dict[int, list[Attempt]]:
    if not event_ids:
        return {}
    c = webhook_attempts.c
    stmt = select(webhook_attempts).where(c.event_id.in_(event_ids)).order_by(c.id)
    by_delivery: dict[int, list[Attempt]] = {}
    for row in await conn.execute(stmt):
        by_delivery.setdefault(int(row.delivery_id), []).append(
            Attempt(row.attempt, row.started_at, row.duration_ms, row.status_code, row.succeeded, row.error)
        )
    return by_delivery


async def account_events(
    conn: AsyncConnection, account_id: str, *, before: str | None, limit: int
) -> list[Event]:
    """Up to `limit` events of the account older than event `before` (when given)."""
    rows = await repo.list_events(conn, account_id=account_id, event_type=None, before=before, limit=limit)
    event_ids = [r.id for r in rows]
    attempts = await _attempts(conn, event_ids)
    deliveries: dict[str, list[Delivery]] = {}
    for d in await repo.deliveries_of(conn, event_ids):
        active = d.status in repo.ACTIVE
        deliveries.setdefault(d.event_id, []).append(
            Delivery(
                id=int(d.id),
                url=d.url,
                status=d.status,
                attempts=d.attempts,
                next_attempt_at=d.next_attempt_at if active else None,
                last_status_code=d.last_status_code,
                last_error=d.last_error,
                finished_at=d.finished_at,
                attempt_log=attempts.get(int(d.id), []),
            )
        )
    return [Event(r.id, r.type, r.created_at, deliveries.get(r.id, [])) for r in rows]
