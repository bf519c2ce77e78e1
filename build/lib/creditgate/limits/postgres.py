"""PostgreSQL enforcement: the authorize decision as one statement (function
creditgate_authorize_many from migration 0004_holds, the same rules as limits.service.authorize,
which SQLite runs in Python), for one request or a batch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.errors import NotFound
from creditgate.ids import new_id
from creditgate.limits import repository as repo
from creditgate.limits.holds import Decision, Hold, HoldRequest


async def authorize(conn: AsyncConnection, req: HoldRequest) -> Decision:
    (result,) = await authorize_many(conn, [req])
    if isinstance(result, NotFound):
        raise result
    return result


def new_hold_row(req: HoldRequest) -> dict[str, Any]:
    return {
        "id": new_id("hold"),
        "account_id": req.account_id,
        "request_id": req.request_id,
        "amount": req.amount,
        "status": "open",
        "model": req.model,
        "provider": req.provider,
        "metadata": req.metadata,
        "created_at": req.now,
        "expires_at": req.now + timedelta(seconds=req.ttl_seconds),
    }


async def _decision(conn: AsyncConnection, row: dict[str, Any], out: Any) -> Decision:
    """Turn one creditgate_authorize_many result row into a Decision."""
    if out.o_outcome == "missing":
        raise NotFound(f"no account {row['account_id']!r}", field="account_id")
    if out.o_outcome == "replayed":
        existing = await repo.hold_by_request(conn, row["account_id"], row["request_id"])
        return Decision(allowed=True, hold=Hold.from_row(existing), replayed=True)
    if out.o_outcome == "denied":
        return Decision(allowed=False, reason=out.o_reason, retry_after_ms=out.o_retry_after_ms)
    fields = {k: v for k, v in row.items() if k in Hold.__dataclass_fields__}
    hold = Hold(**fields, remaining_credit=out.o_remaining_credit, remaining_limit=out.o_remaining_limit)
    return Decision(allowed=True, hold=hold)


async def authorize_many(conn: AsyncConnection, requests: list[HoldRequest]) -> list[Decision | NotFound]:
    """Many decisions in one statement; per request its Decision or NotFound."""
    rows = [new_hold_row(req) for req in requests]
    outs = {out.o_index: out for out in await repo.pg_authorize_many(conn, rows)}
    decided: list[Decision | NotFound] = []
    for index, row in enumerate(rows, start=1):
        try:
            decided.append(await _decision(conn, row, outs[index]))
        except NotFound as exc:
            decided.append(exc)
    return decided
