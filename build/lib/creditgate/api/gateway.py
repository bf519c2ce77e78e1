"""The gateway API: usage reports, and authorize / settle / void of holds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.accounts.principal import Principal
from creditgate.api.auth import principal
from creditgate.api.auto_topup_hook import queue_auto_topups
from creditgate.api.batching import Batcher
from creditgate.api.ingest_queue import queue_for
from creditgate.api.responses import JSON, read_json, read_object
from creditgate.api.state import services
from creditgate.limits import service as limits
from creditgate.metering import authorize as gate
from creditgate.metering import service as metering
from creditgate.metering import settle as settling
from creditgate.money import to_cents_number, to_usd_string
from creditgate.observability import metrics

router = APIRouter(prefix="/v1/gateway")


@router.post("/usage")
async def report_usage(request: Request, caller: Principal = Depends(principal)) -> Response:
    """Ingest up to 1000 usage events. 200 with per-event rejections; 422 when every event
    was rejected (nothing is written either way for a rejected event)."""
    svc = services(request)
    body = await read_object(request, allowed={"events"}, allow_nul=True)
    good, rejected = await metering.parse_batch_yielding(body.get("events"), caller, svc.clock())
    result = await queue_for(svc).submit(metering.ParsedBatch(good, rejected))
    metrics.usage_events(result.accepted, result.duplicates, len(result.rejected))
    all_rejected = bool(result.rejected) and result.accepted == 0 and result.duplicates == 0
    return JSON(result.to_wire(), status_code=422 if all_rejected else 200)


def _money(units: int | None) -> dict[str, Any]:
    if units is None:
        return {"usd": None, "cents": None}
    return {"usd": to_usd_string(units), "cents": to_cents_number(units)}


def hold_view(hold: limits.Hold) -> dict[str, Any]:
    captured = hold.captured
    released = None if captured is None else max(0, hold.amount - captured)
    return {
        "hold_id": hold.id,
        "account_id": hold.account_id,
        "request_id": hold.request_id,
        "status": hold.status,
        "amount_usd": to_usd_string(hold.amount),
        "amount_cents": to_cents_number(hold.amount),
        "created_at": hold.created_at.isoformat(),
        "expires_at": hold.expires_at.isoformat(),
        "closed_at": hold.closed_at.isoformat() if hold.closed_at else None,
        "captured_usd": None if captured is None else to_usd_string(captured),
        "captured_cents": None if captured is None else to_cents_number(captured),
        "released_usd": None if released is None else to_usd_string(released),
        "overrun_usd": to_usd_string(hold.overrun),
        "overrun_cents": to_cents_number(hold.overrun),
        "late": hold.late,
        "event_id": hold.event_id,
    }


def decision_view(decision: limits.Decision) -> dict[str, Any]:
    if not decision.allowed or decision.hold is None:
        body: dict[str, Any] = {"allowed": False, "reason": decision.reason}
        if decision.retry_after_ms is not None:
            body["retry_after_ms"] = decision.retry_after_ms
        return body
    hold = decision.hold
    credit, limit = _money(hold.remaining_credit), _money(hold.remaining_limit)
    return {
        "allowed": True,
        "hold_id": hold.id,
        "amount_usd": to_usd_string(hold.amount),
        "amount_cents": to_cents_number(hold.amount),
        "expires_at": hold.expires_at.isoformat(),
        "remaining": {
            "credit_usd": credit["usd"],
            "credit_cents": credit["cents"],
            "spending_limit_usd": limit["usd"],
            "spending_limit_cents": limit["cents"],
        },
        "replayed": decision.replayed,
    }


@router.post("/authorize")
async def authorize(request: Request) -> Response:
    """May this account spend about this much now? 200 with `allowed` either way. (The caller
    is resolved in the body rather than as a dependency: it is the hottest route.)"""
    caller = await principal(request)
    svc = services(request)
    body = await read_json(request)
    now = svc.clock()
    ttl = svc.settings.hold_ttl_seconds
    req = gate.prepare(body, caller)
    if req.estimate is None:
        async with svc.db.read() as conn:
            await svc.catalog.refresh(conn)
    batcher = svc.extras.get("authorize_batcher")
    if batcher is None:
        batcher = svc.extras["authorize_batcher"] = Batcher(svc.db.single, limits.authorize_many)
    decision = await batcher.submit(gate.hold_request(req, svc.catalog, now, ttl_seconds=ttl))
    metrics.authorize_decision(decision.allowed, decision.reason)
    return JSON(decision_view(decision))


@router.post("/holds/{hold_id}/settle")
async def settle(request: Request, hold_id: str) -> Response:
    """Record the actual usage of a hold (usage-event shape), charge it once, release the rest."""
    caller = await principal(request)
    svc = services(request)
    body = await read_json(request)
    batcher = svc.extras.get("settle_batcher")
    if batcher is None:

        async def run(conn: Any, items: list[settling.SettleRequest]) -> list[Any]:
            now = svc.clock()
            results = list(await settling.settle_many(conn, items, svc.catalog, now))
            debited: dict[str, int] = {}
            for r in results:
                if isinstance(r, settling.Settlement) and not r.replayed:
                    debited[r.hold.account_id] = debited.get(r.hold.account_id, 0) + (r.hold.captured or 0)
            await queue_auto_topups(svc, conn, debited, now)
            return results

        batcher = svc.extras["settle_batcher"] = Batcher(svc.db.write, run)
    done = await batcher.submit(settling.SettleRequest(hold_id, body, caller))
    return JSON({**hold_view(done.hold), "replayed": done.replayed})


@router.post("/holds/{hold_id}/void")
async def void(request: Request, hold_id: str, caller: Principal = Depends(principal)) -> Response:
    """Release a hold without charging (idempotent)."""
    svc = services(request)
    async with svc.db.write() as conn:
        hold = await limits.void(conn, hold_id, caller, svc.clock())
    return JSON(hold_view(hold))


@router.get("/holds/{hold_id}")
async def get_hold(request: Request, hold_id: str, caller: Principal = Depends(principal)) -> Response:
    async with services(request).db.read() as conn:
        return JSON(hold_view(await limits.get_hold(conn, hold_id, caller)))
