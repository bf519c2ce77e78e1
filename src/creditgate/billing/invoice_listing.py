"""All invoices of an account with what a statement of account shows next to each: the
billing cycle it belongs to, a statement's lines and totals and its card charges, a top-up's
card."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import statement_charges
from creditgate.billing.invoices_repo import invoice_from_row
from creditgate.billing.models import invoices, statements, topups
from creditgate.billing.rows import Invoice
from creditgate.billing.statements import ORIGIN as STATEMENT
from creditgate.ledger import service as ledger


@dataclass(frozen=True)
class StatementPart:
    lines: list[dict[str, Any]]  # per provider/model (billing.statements._close_month)
    total: int  # ledger units of usage
    credits: int  # ledger units paid from prepaid credit
    due: int  # ledger units billed
    usage: int  # ledger units the ledger debited in the month (total for months closed before 0013)
    attempts: list[statement_charges.Attempt] = field(default_factory=list)  # card charges of `due`

    def first_charge_at(self, created_at: datetime) -> datetime | None:
        """When the card was first to be charged: the close, for a statement with an amount due."""
        return created_at if self.due > 0 else None


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
            invoices,
            s.period_start,
            s.lines,
            s.total,
            s.credits,
            s.due,
            s.usage,
            t.payment_method_id.label("card"),
        )
        .outerjoin(statements, and_(s.invoice_id == invoices.c.id, s.account_id == invoices.c.account_id))
        .outerjoin(topups, and_(t.invoice_id == invoices.c.id, t.account_id == invoices.c.account_id))
        .where(invoices.c.account_id == account_id)
        .order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
    )
    if invoice_ids is not None:
        stmt = stmt.where(invoices.c.id.in_(list(invoice_ids)))
    out = []
    rows = list(await conn.execute(stmt))
    attempts = await statement_charges.attempts_of(conn, [r.id for r in rows if r.origin == STATEMENT])
    for row in rows:
        invoice = invoice_from_row(row)
        part = None
        moment = invoice.created_at
        if invoice.origin == STATEMENT and row.period_start is not None:
            usage = int(row.total if row.usage is None else row.usage)
            part = StatementPart(
                list(row.lines or []),
                int(row.total),
                int(row.credits),
                int(row.due),
                usage,
                attempts.get(invoice.id, []),
            )
            moment = row.period_start
        out.append(ListedInvoice(invoice, (moment.year, moment.month), part, row.card))
    return out
