"""Liveness (/healthz), readiness (/readyz: the database answers and is at the schema head)
and the Prometheus scrape (/metrics)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from creditgate.api.responses import JSON
from creditgate.api.state import services
from creditgate.db.migrate import current, heads
from creditgate.limits.models import holds
from creditgate.observability import logs, metrics

router = APIRouter(include_in_schema=False)
log = logs.get("creditgate.health")
READY_TIMEOUT_SECONDS = 5.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving (it does not touch the database)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """200 when the database answers and its schema is at head; 503 with the reason otherwise."""
    db = services(request).db
    try:
        at = await asyncio.wait_for(current(db), READY_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("not ready: the database does not answer", error=type(exc).__name__)
        return JSON({"status": "unavailable", "database": "unreachable"}, status_code=503)
    want = heads()
    if frozenset(at) != want:
        return JSON(
            {"status": "unavailable", "database": "ok", "schema": sorted(at), "schema_head": sorted(want)},
            status_code=503,
        )
    return JSON({"status": "ok", "database": "ok", "schema": sorted(at)})


@router.get("/metrics")
async def scrape(request: Request) -> Response:
    """Prometheus text format: every series of docs/operations.md."""
    extra = []
    try:
        async with services(request).db.read() as conn:
            count = await conn.scalar(select(func.count()).select_from(holds).where(holds.c.status == "open"))
        open_holds = GaugeMetricFamily("creditgate_open_holds", "Authorization holds open now.")
        open_holds.add_metric([], float(count or 0))
        extra.append(open_holds)
    except Exception as exc:  # the rest of the scrape is still worth having
        log.warning("metrics: could not count open holds", error=type(exc).__name__)
    return Response(metrics.render(extra), media_type=metrics.CONTENT_TYPE)
