"""The gateway API: usage reports (`POST /v1/gateway/usage`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.accounts.principal import Principal
from creditgate.api.auth import principal
from creditgate.api.responses import JSON, read_object
from creditgate.api.state import services
from creditgate.metering import service as metering

router = APIRouter(prefix="/v1/gateway")


@router.post("/usage")
async def report_usage(request: Request, caller: Principal = Depends(principal)) -> Response:
    """Ingest up to 1000 usage events. 200 with per-event rejections; 422 when every event
    was rejected (nothing is written either way for a rejected event)."""
    svc = services(request)
    body = await read_object(request, allowed={"events"})
    now = svc.clock()
    async with svc.db.write() as conn:
        result = await metering.ingest(conn, body.get("events"), caller, svc.catalog, now)
    all_rejected = bool(result.rejected) and result.accepted == 0 and result.duplicates == 0
    return JSON(result.to_wire(), status_code=422 if all_rejected else 200)
