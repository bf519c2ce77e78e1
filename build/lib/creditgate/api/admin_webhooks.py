"""The operator's webhook administration under /admin/v1: outgoing endpoints (the secret is
shown once, at creation), outgoing events with every delivery attempt, and the incoming
processor-event inbox."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.api.admin import operator
from creditgate.api.responses import JSON, read_object
from creditgate.api.state import services
from creditgate.billing import inbox
from creditgate.errors import ValidationError
from creditgate.notify import service as notify

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(operator)])

INBOX_STATUSES = ("received", "processed", "ignored", "failed")


def _limit(limit: int) -> int:
    if not 1 <= limit <= 1000:
        raise ValidationError("limit must be between 1 and 1000", field="limit")
    return limit


@router.post("/webhook-endpoints")
async def create_endpoint(request: Request) -> Response:
    svc = services(request)
    body = await read_object(request, allowed={"url", "description", "event_types"})
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 200):
        raise ValidationError("description must be a string of at most 200 characters", field="description")
    async with svc.db.write() as conn:
        row, secret = await notify.create_endpoint(
            conn, body.get("url"), svc.clock(), description=description, event_types=body.get("event_types")
        )
    return JSON({**notify.endpoint_view(row), "secret": secret}, status_code=201)


@router.get("/webhook-endpoints")
async def list_endpoints(request: Request) -> Response:
    async with services(request).db.read() as conn:
        rows = await notify.list_endpoints(conn)
    views = [notify.endpoint_view(r) for r in rows]
    return JSON({"endpoints": views, "event_types": list(notify.EVENT_TYPES)})


@router.get("/webhook-endpoints/{endpoint_id}")
async def get_endpoint(request: Request, endpoint_id: str) -> Response:
    async with services(request).db.read() as conn:
        return JSON(notify.endpoint_view(await notify.get_endpoint(conn, endpoint_id)))


@router.delete("/webhook-endpoints/{endpoint_id}")
async def delete_endpoint(request: Request, endpoint_id: str) -> Response:
    svc = services(request)
    async with svc.db.write() as conn:
        await notify.delete_endpoint(conn, endpoint_id, svc.clock())
    return JSON({"deleted": endpoint_id})


@router.get("/webhook-events")
async def list_events(
    request: Request,
    account_id: str | None = None,
    type: str | None = None,
    before: str | None = None,
    limit: int = 100,
) -> Response:
    async with services(request).db.read() as conn:
        events = await notify.list_events(
            conn, account_id=account_id, event_type=type, before=before, limit=_limit(limit)
        )
    return JSON({"events": events})


@router.get("/webhook-events/{event_id}")
async def get_event(request: Request, event_id: str) -> Response:
    async with services(request).db.read() as conn:
        return JSON(await notify.event_detail(conn, event_id))


@router.get("/webhook-events/{event_id}/attempts")
async def list_attempts(request: Request, event_id: str) -> Response:
    async with services(request).db.read() as conn:
        return JSON({"attempts": await notify.event_attempts(conn, event_id)})


@router.post("/webhook-events/{event_id}/redeliver")
async def redeliver(request: Request, event_id: str) -> Response:
    svc = services(request)
    async with svc.db.write() as conn:
        count = await notify.redeliver(conn, event_id, svc.clock())
    return JSON({"event_id": event_id, "requeued": count})


@router.get("/webhooks/inbox")
async def list_inbox(request: Request, status: str | None = None, limit: int = 100) -> Response:
    if status is not None and status not in INBOX_STATUSES:
        raise ValidationError(f"status must be one of {', '.join(INBOX_STATUSES)}", field="status")
    async with services(request).db.read() as conn:
        return JSON({"events": await inbox.list_events(conn, status=status, limit=_limit(limit))})
