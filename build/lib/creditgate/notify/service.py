"""Outgoing webhooks: endpoints and the outbox.

`emit(conn, account_id, type, payload, now)` is called by a domain inside the transaction
that makes the change it reports, so an event exists if and only if the change committed.
It stores the exact body to send and one pending delivery per subscribed endpoint; the
`deliver_webhooks` job sends them after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.errors import NotFound, ValidationError
from creditgate.ids import new_id
from creditgate.notify import repository as repo
from creditgate.notify.signing import new_secret

EVENT_TYPES = (
    "topup.succeeded",
    "topup.failed",
    "auto_topup.disabled",
    "balance.low",
    "spending_limit.reached",
    "invoice.finalized",
)
MAX_URL_LENGTH = 2000


def check_url(url: object) -> str:
    """An absolute http(s) URL with a host and no credentials in it."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"url must be a string of at most {MAX_URL_LENGTH} characters", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValidationError(f"url is not a valid URL: {exc}", field="url") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("url must be an absolute http:// or https:// URL", field="url")
    if parts.username or parts.password:
        raise ValidationError("url must not carry credentials", field="url")
    if parts.fragment:
        raise ValidationError("url must not have a #fragment", field="url")
    return url


def check_event_types(value: object) -> list[str] | None:
    """None (every type) or a non-empty list of known types, deduplicated in order."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ValidationError(
            "event_types must be a non-empty list (or omitted for all)", field="event_types"
        )
    chosen: list[str] = []
    for item in value:
        if item not in EVENT_TYPES:
            raise ValidationError(
                f"unknown event type {item!r}; known: {', '.join(EVENT_TYPES)}", field="event_types"
            )
        if item not in chosen:
            chosen.append(item)
    return chosen


async def create_endpoint(
    conn: AsyncConnection,
    url: object,
    now: datetime,
    *,
    description: str | None = None,
    event_types: object = None,
) -> tuple[Any, str]:
    """Register an endpoint. Returns its row and its signing secret (show the secret once)."""
    row = {
        "id": new_id("we"),
        "url": check_url(url),
        "secret": new_secret(),
        "description": description,
        "event_types": check_event_types(event_types),
        "created_at": now,
        "deleted_at": None,
    }
    await repo.insert_endpoint(conn, row)
    return await get_endpoint(conn, str(row["id"])), str(row["secret"])


async def list_endpoints(conn: AsyncConnection) -> list[Any]:
    return await repo.live_endpoints(conn)


async def get_endpoint(conn: AsyncConnection, endpoint_id: str) -> Any:
    row = await repo.endpoint(conn, endpoint_id)
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return row


async def delete_endpoint(conn: AsyncConnection, endpoint_id: str, now: datetime) -> None:
    """Stop sending to it; its unfinished deliveries are canceled, its history stays."""
    if not await repo.delete_endpoint(conn, endpoint_id, now):
        raise NotFound(f"no webhook endpoint {endpoint_id}")


def _subscribed(endpoint: Any, event_type: str) -> bool:
    return endpoint.event_types is None or event_type in endpoint.event_types


async def emit(
    conn: AsyncConnection, account_id: str, event_type: str, payload: Mapping[str, Any], now: datetime
) -> str:
    """Record an event in the outbox (same transaction as the change) and queue one delivery
    per subscribed endpoint. Returns the event id, which is the webhook-id header."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    event_id = new_id("msg")
    body = orjson.dumps(
        {
            "id": event_id,
            "type": event_type,
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "account_id": account_id,
            "data": dict(payload),
        }
    ).decode()
    await repo.insert_event(
        conn, {"id": event_id, "account_id": account_id, "type": event_type, "body": body, "created_at": now}
    )
    endpoints = [e for e in await repo.live_endpoints(conn) if _subscribed(e, event_type)]
    await repo.insert_deliveries(
        conn,
        [
            {
                "event_id": event_id,
                "endpoint_id": e.id,
                "account_id": account_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for e in endpoints
        ],
    )
    return event_id


async def list_events(
    conn: AsyncConnection,
    *,
    account_id: str | None = None,
    event_type: str | None = None,
    before: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first, each with its deliveries' state."""
    rows = await repo.list_events(
        conn, account_id=account_id, event_type=event_type, before=before, limit=limit
    )
    deliveries = await repo.deliveries_of(conn, [r.id for r in rows])
    by_event: dict[str, list[Any]] = {}
    for d in deliveries:
        by_event.setdefault(d.event_id, []).append(d)
    return [event_view(r, by_event.get(r.id, [])) for r in rows]


async def event_detail(conn: AsyncConnection, event_id: str) -> dict[str, Any]:
    """One event, its deliveries and every attempt of each."""
    row = await repo.event(conn, event_id)
    if row is None:
        raise NotFound(f"no webhook event {event_id}")
    deliveries = await repo.deliveries_of(conn, [event_id])
    attempts = await repo.attempts_of(conn, event_id)
    view = event_view(row, deliveries)
    for delivery in view["deliveries"]:
        delivery["attempts_log"] = [attempt_view(a) for a in attempts if a.delivery_id == delivery["id"]]
    return view


async def event_attempts(conn: AsyncConnection, event_id: str) -> list[dict[str, Any]]:
    if await repo.event(conn, event_id) is None:
        raise NotFound(f"no webhook event {event_id}")
    return [attempt_view(a) for a in await repo.attempts_of(conn, event_id)]


async def redeliver(conn: AsyncConnection, event_id: str, now: datetime) -> int:
    """Send an event again to the live endpoints it already finished with (attempts restart)."""
    if await repo.event(conn, event_id) is None:
        raise NotFound(f"no webhook event {event_id}")
    return await repo.redeliver(conn, event_id, now)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def endpoint_view(row: Any) -> dict[str, Any]:
    """An endpoint without its secret."""
    return {
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "event_types": row.event_types,
        "created_at": _iso(row.created_at),
    }


def delivery_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "endpoint_id": row.endpoint_id,
        "url": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": _iso(row.next_attempt_at) if row.status in repo.ACTIVE else None,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "finished_at": _iso(row.finished_at),
    }


def event_view(row: Any, deliveries: Iterable[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "type": row.type,
        "created_at": _iso(row.created_at),
        "payload": orjson.loads(row.body),
        "deliveries": [delivery_view(d) for d in deliveries],
    }


def attempt_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "delivery_id": row.delivery_id,
        "endpoint_id": row.endpoint_id,
        "attempt": row.attempt,
        "started_at": _iso(row.started_at),
        "duration_ms": row.duration_ms,
        "status_code": row.status_code,
        "succeeded": row.succeeded,
        "error": row.error,
    }
