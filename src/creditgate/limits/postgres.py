"""The hold decision on PostgreSQL: one call of the function creditgate_authorize_many
(authorize_many.sql, twin of limits.decision, which SQLite runs), for one request or a batch."""

from __future__ import annotations

from datetime import timedelta
from importlib.resources import files
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.errors import NotFound
from creditgate.ids import new_id
from creditgate.limits import repository as repo
from creditgate.limits.holds import Decision, Hold, HoldRequest

SQL_FILE = "authorize_many.sql"


def authorize_many_sql() -> str:
    """The CREATE OR REPLACE FUNCTION statement as this version of the code ships it. The
    function in a database is the one its last migration installed (see 0008_hold_sql)."""
    return files("creditgate.limits").joinpath(SQL_FILE).read_text(encoding="utf-8")


def _hold_row(req: HoldRequest) -> dict[str, Any]:
    return {
        "id": new_id("hold"),
        "account_id": req.account_id,
        "request_id": req.request_id,
        "amount": req.amount,
        "model": req.model,
        "provider": req.provider,
        "metadata": req.metadata,
        "created_at": req.now,
        "expires_at": req.now + timedelta(seconds=req.ttl_seconds),
    }


async def _decision(conn: AsyncConnection, row: dict[str, Any], out: Any) -> Decision:
    """Turn one creditgate_authorize_many result record into a Decision."""
    outcome = out["o_outcome"]
    if outcome == "missing":
        raise NotFound(f"no account {row['account_id']!r}", field="account_id")
    if outcome == "replayed":
        existing = await repo.hold_by_request(conn, row["account_id"], row["request_id"])
        if existing is None:  # the function saw it under the account lock; it cannot vanish
            raise RuntimeError(f"hold for request {row['request_id']!r} disappeared")
        return Decision(allowed=True, hold=Hold.from_row(existing), replayed=True)
    if outcome == "denied":
        return Decision(allowed=False, reason=out["o_reason"], retry_after_ms=out["o_retry_after_ms"])
    hold = Hold(
        id=row["id"],
        account_id=row["account_id"],
        request_id=row["request_id"],
        amount=row["amount"],
        status="open",
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        remaining_credit=out["o_remaining_credit"],
        remaining_limit=out["o_remaining_limit"],
        model=row["model"],
        provider=row["provider"],
    )
    return Decision(allowed=True, hold=hold)


async def authorize_many(conn: AsyncConnection, requests: list[HoldRequest]) -> list[Decision | NotFound]:
    """Many decisions in one statement; per request its Decision or NotFound."""
    rows = [_hold_row(req) for req in requests]
    outs = {out["o_index"]: out for out in await repo.pg_authorize_many(conn, rows)}
    decided: list[Decision | NotFound] = []
    for index, row in enumerate(rows, start=1):
        try:
            decided.append(await _decision(conn, row, outs[index]))
        except NotFound as exc:
            decided.append(exc)
    return decided
