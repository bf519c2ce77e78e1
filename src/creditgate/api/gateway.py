"""The gateway API: usage reports (`POST /v1/gateway/usage`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.api.auth import principal
from creditgate.api.responses import JSON, read_object
from creditgate.api.state import Services, services
from creditgate.billing import autotopup
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
        await queue_auto_topups(svc, conn, result.charged, now)
    all_rejected = bool(result.rejected) and result.accepted == 0 and result.duplicates == 0
    return JSON(result.to_wire(), status_code=422 if all_rejected else 200)


async def queue_auto_topups(
    svc: Services, conn: AsyncConnection, debited: Mapping[str, int], now: datetime
) -> None:
    """Auto top-up hook, in the debit's own transaction: queue one charge for each account
    this debit took under its threshold (the `auto_topups` job makes the charge). Call it
    after every ingest that debits (usage reports, hold settlement)."""
    name = svc.processor.name if svc.processor is not None else None
    await autotopup.after_debit(conn, [a for a, units in debited.items() if units > 0], now, name)
