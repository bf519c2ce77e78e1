"""SQL for billing.reconcile, the books check across top-ups and their invoices (read only).
Only billing.reconcile imports this module."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.models import invoices, topups


@dataclass(frozen=True)
class InconsistentTopup:
    id: str
    account_id: str
    status: str
    invoice_status: str


# a top-up's invoice: the same account's (rows that refer to each other share the account)
_topup_invoice = and_(topups.c.invoice_id == invoices.c.id, topups.c.account_id == invoices.c.account_id)


async def paid_topup_totals(conn: AsyncConnection) -> dict[str, int]:
    """Cents paid per account on invoices that belong to a completed top-up."""
    stmt = (
        select(invoices.c.account_id, func.sum(invoices.c.amount_paid))
        .select_from(invoices.join(topups, _topup_invoice))
        .where(invoices.c.status == "paid", topups.c.status == "completed")
        .group_by(invoices.c.account_id)
    )
    return {row[0]: int(row[1]) for row in await conn.execute(stmt)}


async def inconsistent_topups(conn: AsyncConnection) -> list[InconsistentTopup]:
    """Top-ups whose status disagrees with their invoice's (completed <-> paid)."""
    stmt = (
        select(topups.c.id, topups.c.account_id, topups.c.status, invoices.c.status.label("invoice_status"))
        .select_from(topups.join(invoices, _topup_invoice))
        .where(
            or_(
                and_(topups.c.status == "completed", invoices.c.status != "paid"),
                and_(topups.c.status != "completed", invoices.c.status == "paid"),
            )
        )
        .order_by(topups.c.id)
    )
    return [
        InconsistentTopup(r.id, r.account_id, r.status, r.invoice_status) for r in await conn.execute(stmt)
    ]
