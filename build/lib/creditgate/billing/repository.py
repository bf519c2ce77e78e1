"""SQL for billing. Only billing's own modules import this."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.models import auto_topup_configs, billing_cards, billing_profiles, invoices, topups


async def _upsert(conn: AsyncConnection, table: Table, key: dict[str, Any], values: dict[str, Any]) -> None:
    """Update the row with `key`, or insert it. Callers hold the account lock."""
    where = [table.c[k] == v for k, v in key.items()]
    updated = await conn.execute(table.update().where(*where).values(**values))
    if updated.rowcount == 0:
        await conn.execute(table.insert().values(**key, **values))


async def get_profile(conn: AsyncConnection, account_id: str) -> Any:
    stmt = select(billing_profiles).where(billing_profiles.c.account_id == account_id)
    return (await conn.execute(stmt)).first()


async def upsert_profile(conn: AsyncConnection, account_id: str, values: dict[str, Any]) -> None:
    await _upsert(conn, billing_profiles, {"account_id": account_id}, values)


async def insert_card(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    try:
        async with conn.begin_nested():
            await conn.execute(billing_cards.insert().values(**row))
    except IntegrityError:
        return False
    return True


async def get_card(conn: AsyncConnection, account_id: str, payment_method_id: str) -> Any:
    stmt = select(billing_cards).where(
        billing_cards.c.account_id == account_id, billing_cards.c.payment_method_id == payment_method_id
    )
    return (await conn.execute(stmt)).first()


async def list_cards(conn: AsyncConnection, account_id: str) -> list[Any]:
    stmt = (
        select(billing_cards)
        .where(billing_cards.c.account_id == account_id)
        .order_by(billing_cards.c.created_at, billing_cards.c.payment_method_id)
    )
    return list(await conn.execute(stmt))


async def get_config(conn: AsyncConnection, account_id: str) -> Any:
    stmt = select(auto_topup_configs).where(auto_topup_configs.c.account_id == account_id)
    return (await conn.execute(stmt)).first()


async def upsert_config(conn: AsyncConnection, account_id: str, values: dict[str, Any]) -> None:
    await _upsert(conn, auto_topup_configs, {"account_id": account_id}, values)


async def delete_config(conn: AsyncConnection, account_id: str) -> bool:
    result = await conn.execute(
        delete(auto_topup_configs).where(auto_topup_configs.c.account_id == account_id)
    )
    return bool(result.rowcount)


async def count_invoices(conn: AsyncConnection, account_id: str, origins: Sequence[str] | None = None) -> int:
    stmt = select(func.count()).select_from(invoices).where(invoices.c.account_id == account_id)
    if origins is not None:
        stmt = stmt.where(invoices.c.origin.in_(list(origins)))
    return int((await conn.execute(stmt)).scalar_one())


async def insert_invoice(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(invoices.insert().values(**row))


async def get_invoice(conn: AsyncConnection, invoice_id: str) -> Any:
    return (await conn.execute(select(invoices).where(invoices.c.id == invoice_id))).first()


async def list_invoices(
    conn: AsyncConnection, account_id: str, origins: Sequence[str], *, limit: int, offset: int
) -> list[Any]:
    stmt = (
        select(invoices)
        .where(invoices.c.account_id == account_id, invoices.c.origin.in_(list(origins)))
        .order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(await conn.execute(stmt))


async def update_invoice(conn: AsyncConnection, invoice_id: str, values: dict[str, Any]) -> None:
    await conn.execute(invoices.update().where(invoices.c.id == invoice_id).values(**values))


async def insert_topup(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(topups.insert().values(**row))


async def get_topup(conn: AsyncConnection, topup_id: str) -> Any:
    return (await conn.execute(select(topups).where(topups.c.id == topup_id))).first()


async def topup_by_invoice(conn: AsyncConnection, account_id: str, invoice_id: str) -> Any:
    stmt = select(topups).where(topups.c.account_id == account_id, topups.c.invoice_id == invoice_id)
    return (await conn.execute(stmt)).first()


async def topup_by_request_key(conn: AsyncConnection, account_id: str, key: str) -> Any:
    stmt = select(topups).where(topups.c.account_id == account_id, topups.c.request_key == key)
    return (await conn.execute(stmt)).first()


async def recent_identical_topup(
    conn: AsyncConnection,
    account_id: str,
    *,
    amount: int,
    payment_method_id: str,
    origin: str,
    since: datetime,
    statuses: Sequence[str],
) -> Any:
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
    return (await conn.execute(stmt)).first()


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


async def paid_topup_totals(conn: AsyncConnection) -> dict[str, int]:
    """Cents paid per account on invoices that belong to a completed top-up."""
    stmt = (
        select(invoices.c.account_id, func.sum(invoices.c.amount_paid))
        .select_from(invoices.join(topups, topups.c.invoice_id == invoices.c.id))
        .where(invoices.c.status == "paid", topups.c.status == "completed")
        .group_by(invoices.c.account_id)
    )
    return {row[0]: int(row[1]) for row in await conn.execute(stmt)}


async def inconsistent_topups(conn: AsyncConnection) -> list[Any]:
    """Top-ups whose status disagrees with their invoice's (completed <-> paid)."""
    stmt = (
        select(topups.c.id, topups.c.account_id, topups.c.status, invoices.c.status.label("invoice_status"))
        .select_from(topups.join(invoices, topups.c.invoice_id == invoices.c.id))
        .where(
            or_(
                and_(topups.c.status == "completed", invoices.c.status != "paid"),
                and_(topups.c.status != "completed", invoices.c.status == "paid"),
            )
        )
        .order_by(topups.c.id)
    )
    return list(await conn.execute(stmt))


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
