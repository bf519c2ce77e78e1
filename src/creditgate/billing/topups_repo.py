"""SQL for top-ups (the `topups` table). Only billing.topups imports this module."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.models import topups
from creditgate.billing.rows import Topup


def _topup(row: Row[Any]) -> Topup:
    return Topup(
        id=row.id,
        account_id=row.account_id,
        invoice_id=row.invoice_id,
        amount=int(row.amount),
        currency=row.currency,
        origin=row.origin,
        status=row.status,
        customer_id=row.customer_id,
        payment_method_id=row.payment_method_id,
        payment_id=row.payment_id,
        client_secret=row.client_secret,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
        created_at=row.created_at,
    )


async def _one(conn: AsyncConnection, *where: Any) -> Topup | None:
    row = (await conn.execute(select(topups).where(*where))).first()
    return None if row is None else _topup(row)


async def insert_topup(
    conn: AsyncConnection, topup: Topup, *, requested_method: str | None, request_key: str | None
) -> None:
    await conn.execute(
        topups.insert().values(
            id=topup.id,
            account_id=topup.account_id,
            invoice_id=topup.invoice_id,
            amount=topup.amount,
            currency=topup.currency,
            origin=topup.origin,
            status=topup.status,
            customer_id=topup.customer_id,
            payment_method_id=topup.payment_method_id,
            requested_method=requested_method,
            request_key=request_key,
            payment_id=topup.payment_id,
            client_secret=topup.client_secret,
            failure_code=topup.failure_code,
            failure_message=topup.failure_message,
            created_at=topup.created_at,
            updated_at=topup.created_at,
            completed_at=None,
        )
    )


async def get_topup(conn: AsyncConnection, topup_id: str) -> Topup | None:
    return await _one(conn, topups.c.id == topup_id)


async def topup_by_invoice(conn: AsyncConnection, account_id: str, invoice_id: str) -> Topup | None:
    return await _one(conn, topups.c.account_id == account_id, topups.c.invoice_id == invoice_id)


async def topup_by_request_key(conn: AsyncConnection, account_id: str, key: str) -> Topup | None:
    return await _one(conn, topups.c.account_id == account_id, topups.c.request_key == key)


async def topup_by_payment(conn: AsyncConnection, payment_id: str) -> Topup | None:
    stmt = select(topups).where(topups.c.payment_id == payment_id).order_by(topups.c.created_at).limit(1)
    row = (await conn.execute(stmt)).first()
    return None if row is None else _topup(row)


async def recent_identical_topup(
    conn: AsyncConnection,
    account_id: str,
    *,
    amount: int,
    payment_method_id: str,
    origin: str,
    since: datetime,
    statuses: Sequence[str],
) -> Topup | None:
    """The newest key-less top-up with these parameters created at or after `since`."""
    stmt = (
        select(topups)
        .where(
            topups.c.account_id == account_id,
            topups.c.amount == amount,
            topups.c.payment_method_id == payment_method_id,
            topups.c.origin == origin,
            topups.c.request_key.is_(None),
            topups.c.created_at >= since,
            topups.c.status.in_(list(statuses)),
        )
        .order_by(topups.c.created_at.desc(), topups.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else _topup(row)


async def oldest_unsettled_topup(conn: AsyncConnection, account_id: str) -> Topup | None:
    """The account's oldest top-up still waiting for its charge (created, or pending 3-D Secure)."""
    stmt = (
        select(topups)
        .where(topups.c.account_id == account_id, topups.c.status.in_(("created", "pending")))
        .order_by(topups.c.created_at, topups.c.id)
        .limit(1)
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else _topup(row)


async def list_topups(conn: AsyncConnection, account_id: str, limit: int) -> list[Topup]:
    stmt = (
        select(topups)
        .where(topups.c.account_id == account_id)
        .order_by(topups.c.created_at.desc(), topups.c.id.desc())
        .limit(limit)
    )
    return [_topup(row) for row in await conn.execute(stmt)]


async def update_topup(
    conn: AsyncConnection, topup_id: str, from_statuses: Sequence[str], values: dict[str, Any]
) -> int:
    """Guarded transition: only a row still in one of `from_statuses` changes."""
    result = await conn.execute(
        topups.update()
        .where(topups.c.id == topup_id, topups.c.status.in_(list(from_statuses)))
        .values(**values)
    )
    return int(result.rowcount)


async def count_completed_topups(
    conn: AsyncConnection, account_id: str, *, exclude: str, created_before: datetime
) -> int:
    stmt = (
        select(func.count())
        .select_from(topups)
        .where(
            topups.c.account_id == account_id,
            topups.c.status == "completed",
            topups.c.id != exclude,
            topups.c.created_at <= created_before,
        )
    )
    return int((await conn.execute(stmt)).scalar_one())
