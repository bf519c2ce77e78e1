"""All invoices of an account with what a statement of account shows next to each: the
billing cycle it belongs to, a statement's lines and totals, a top-up's card."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.invoices import Invoice, _invoice
from creditgate.billing.models import invoices, statements, topups
from creditgate.billing.statements import ORIGIN as STATEMENT
from creditgate.ledger import service as ledger


@dataclass(frozen=True)
class StatementPart:
    lines: list[dict[str, Any]]  # per provider/model (billing.statements._close_month)
    total: int  # ledger units of usage
    credits: int  # ledger units paid from prepaid credit
    due: int  # ledger units billed


@dataclass(frozen=True)
class ListedInvoice:
    invoice: Invoice
    cycle: tuple[int, int]  # (year, month): a statement's period, else the month it was issued
    statement: StatementPart | None
    payment_method_id: str | None  # the card a top-up charged


async def list_all(
    conn: AsyncConnection, account_id: str, invoice_ids: Sequence[str] | None = None
) -> list[ListedInvoice]:
    """The account's invoices (only those in `invoice_ids` when given), newest first."""
    await ledger.get_account(conn, account_id)
    s, t = statements.c, topups.c
    stmt = (
        select(
            invoices, s.period_start, s.lines, s.total, s.credits, s.due, t.payment_method_id.label("card")
        )
        .outerjoin(statements, s.invoice_id == invoices.c.id)
        .outerjoin(topups, t.invoice_id == invoices.c.id)
        .where(invoices.c.account_id == account_id)
        .order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
    )
    if invoice_ids is not None:
        stmt = stmt.where(invoices.c.id.in_(list(invoice_ids)))
    out = []
    for row in await conn.execute(stmt):
        invoice = _invoice(row)
        part = None
        moment = invoice.created_at
        if invoice.origin == STATEMENT and row.period_start is not None:
            part = StatementPart(list(row.lines or []), int(row.total), int(row.credits), int(row.due))
            moment = row.period_start
        out.append(ListedInvoice(invoice, (moment.year, moment.month), part, row.card))
    return out
