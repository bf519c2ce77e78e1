"""SQL for invoices and monthly statements. Only billing's invoice modules (invoices, statement_charges,
statements, invoice_listing) import this module."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.models import invoices, statements
from creditgate.billing.parties import Parties
from creditgate.billing.rows import Invoice, Statement
from creditgate.ledger.models import accounts


def invoice_from_row(row: Row[Any]) -> Invoice:
    """The typed invoice of a row that has the invoices table's columns."""
    return Invoice(
        id=row.id,
        account_id=row.account_id,
        number=row.number,
        status=row.status,
        origin=row.origin,
        currency=row.currency,
        amount_due=int(row.amount_due),
        amount_paid=int(row.amount_paid),
        description=row.description,
        attempt_count=int(row.attempt_count),
        pdf_key=row.pdf_key,
        created_at=row.created_at,
        paid_at=row.paid_at,
        parties=None if row.parties is None else Parties.from_json(row.parties),
    )


def _statement(row: Row[Any]) -> Statement:
    return Statement(
        account_id=row.account_id,
        period_start=row.period_start,
        period_end=row.period_end,
        invoice_id=row.invoice_id,
        mode=row.mode,
        total=int(row.total),
        late=int(row.late),
        credits=int(row.credits),
        due=int(row.due),
        lines=list(row.lines),
        created_at=row.created_at,
        usage=None if row.usage is None else int(row.usage),
    )


async def count_invoices(conn: AsyncConnection, account_id: str, origins: Sequence[str] | None = None) -> int:
    stmt = select(func.count()).select_from(invoices).where(invoices.c.account_id == account_id)
    if origins is not None:
        stmt = stmt.where(invoices.c.origin.in_(list(origins)))
    return int((await conn.execute(stmt)).scalar_one())


async def insert_invoice(conn: AsyncConnection, invoice: Invoice) -> None:
    await conn.execute(
        invoices.insert().values(
            id=invoice.id,
            account_id=invoice.account_id,
            number=invoice.number,
            status=invoice.status,
            origin=invoice.origin,
            currency=invoice.currency,
            amount_due=invoice.amount_due,
            amount_paid=invoice.amount_paid,
            description=invoice.description,
            attempt_count=invoice.attempt_count,
            pdf_key=invoice.pdf_key,
            created_at=invoice.created_at,
            paid_at=invoice.paid_at,
            parties=None if invoice.parties is None else invoice.parties.as_json(),
        )
    )


async def get_invoice(conn: AsyncConnection, invoice_id: str) -> Invoice | None:
    row = (await conn.execute(select(invoices).where(invoices.c.id == invoice_id))).first()
    return None if row is None else invoice_from_row(row)


async def list_invoices(
    conn: AsyncConnection, account_id: str, origins: Sequence[str], *, limit: int, offset: int
) -> list[Invoice]:
    stmt = (
        select(invoices)
        .where(invoices.c.account_id == account_id, invoices.c.origin.in_(list(origins)))
        .order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [invoice_from_row(row) for row in await conn.execute(stmt)]


async def update_invoice(
    conn: AsyncConnection,
    invoice_id: str,
    values: dict[str, Any],
    *,
    from_statuses: Sequence[str] | None = None,
) -> int:
    """Change an invoice; with `from_statuses`, only while it is still in one of them."""
    stmt = invoices.update().where(invoices.c.id == invoice_id)
    if from_statuses is not None:
        stmt = stmt.where(invoices.c.status.in_(list(from_statuses)))
    return int((await conn.execute(stmt.values(**values))).rowcount)


async def accounts_to_close(
    conn: AsyncConnection, period_start: datetime, period_end: datetime, limit: int
) -> list[str]:
    """Accounts created before `period_end` that have no statement for the period yet."""
    done = select(statements.c.account_id).where(
        statements.c.account_id == accounts.c.id, statements.c.period_start == period_start
    )
    stmt = (
        select(accounts.c.id)
        .where(accounts.c.created_at < period_end, ~done.exists())
        .order_by(accounts.c.id)
        .limit(limit)
    )
    return [row[0] for row in await conn.execute(stmt)]


async def last_statement(conn: AsyncConnection, account_id: str) -> Statement | None:
    stmt = (
        select(statements)
        .where(statements.c.account_id == account_id)
        .order_by(statements.c.period_start.desc())
        .limit(1)
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else _statement(row)


async def statement_totals_before(conn: AsyncConnection, account_id: str, before: datetime) -> int:
    stmt = select(func.coalesce(func.sum(statements.c.total), 0)).where(
        statements.c.account_id == account_id, statements.c.period_start < before
    )
    return int((await conn.execute(stmt)).scalar_one())


async def insert_statement(conn: AsyncConnection, statement: Statement) -> None:
    await conn.execute(
        statements.insert().values(
            account_id=statement.account_id,
            period_start=statement.period_start,
            period_end=statement.period_end,
            invoice_id=statement.invoice_id,
            mode=statement.mode,
            total=statement.total,
            late=statement.late,
            credits=statement.credits,
            due=statement.due,
            lines=statement.lines,
            created_at=statement.created_at,
            usage=statement.usage,
        )
    )


async def statement_of_invoice(conn: AsyncConnection, invoice_id: str) -> Statement | None:
    row = (await conn.execute(select(statements).where(statements.c.invoice_id == invoice_id))).first()
    return None if row is None else _statement(row)
