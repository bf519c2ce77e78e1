"""SQL for refunds of top-ups (the `topup_refunds` table). Only billing.refunds imports this
module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.models import topup_refunds
from creditgate.billing.rows import Refund

_r = topup_refunds.c


def _refund(row: Row[Any]) -> Refund:
    return Refund(
        id=row.id,
        account_id=row.account_id,
        topup_id=row.topup_id,
        amount=int(row.amount),
        status=row.status,
        processor_refund_id=row.processor_refund_id,
        reason=row.reason,
        failure_message=row.failure_message,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )


async def _one(conn: AsyncConnection, *where: Any) -> Refund | None:
    row = (await conn.execute(select(topup_refunds).where(*where))).first()
    return None if row is None else _refund(row)


async def insert_refund(conn: AsyncConnection, refund: Refund, *, request_key: str | None) -> None:
    await conn.execute(
        topup_refunds.insert().values(
            id=refund.id,
            account_id=refund.account_id,
            topup_id=refund.topup_id,
            amount=refund.amount,
            status=refund.status,
            processor_refund_id=refund.processor_refund_id,
            reason=refund.reason,
            request_key=request_key,
            failure_message=refund.failure_message,
            created_at=refund.created_at,
            updated_at=refund.created_at,
            completed_at=refund.completed_at,
        )
    )


async def refunds_of(conn: AsyncConnection, topup_id: str) -> list[Refund]:
    stmt = select(topup_refunds).where(_r.topup_id == topup_id).order_by(_r.created_at, _r.id)
    return [_refund(row) for row in await conn.execute(stmt)]


async def get_refund(conn: AsyncConnection, refund_id: str) -> Refund | None:
    return await _one(conn, _r.id == refund_id)


async def refund_by_processor_id(
    conn: AsyncConnection, account_id: str, processor_refund_id: str
) -> Refund | None:
    return await _one(conn, _r.account_id == account_id, _r.processor_refund_id == processor_refund_id)


async def refund_by_request_key(conn: AsyncConnection, account_id: str, key: str) -> Refund | None:
    return await _one(conn, _r.account_id == account_id, _r.request_key == key)


async def update_refund(
    conn: AsyncConnection, refund_id: str, from_statuses: Sequence[str], values: dict[str, Any]
) -> int:
    """Guarded transition: only a row still in one of `from_statuses` changes."""
    stmt = (
        topup_refunds.update().where(_r.id == refund_id, _r.status.in_(list(from_statuses))).values(**values)
    )
    return int((await conn.execute(stmt)).rowcount)
