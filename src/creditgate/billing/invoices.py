"""Invoices: issuing them (top-ups and statements), their PDFs, and the current month's preview.

Invoice amounts are whole cents. The preview is computed from the usage rollups in ledger
units and stays exact: its lines, credits and amount due add up to the ledger to the unit.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import invoices_repo as repo
from creditgate.billing import numbering, parties
from creditgate.billing.parties import Seller
from creditgate.billing.rows import Invoice as Invoice  # the public name (pdf, adapters)
from creditgate.errors import NotFound, ValidationError
from creditgate.ids import new_id, new_secret
from creditgate.ledger import service as ledger
from creditgate.metering import service as metering
from creditgate.money import UNITS_PER_CENT

INVOICE_TYPES = {"all": ("manual", "auto", "statement"), "manual": ("manual",), "auto": ("auto",)}
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class InvoicePage:
    invoices: list[Invoice]
    page: int
    per_page: int
    total_count: int

    @property
    def has_more(self) -> bool:
        return self.page * self.per_page < self.total_count


@dataclass(frozen=True)
class PreviewLine:
    provider: str
    model: str
    events: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: int  # ledger units
    credit: int  # ledger units of prepaid credit applied to this line

    @property
    def unit_cost_cents(self) -> str | None:
        """The average cost of one request in cents, as a decimal string (12 places at most)."""
        if self.events <= 0:
            return None
        value = (Decimal(self.cost) / Decimal(self.events) / UNITS_PER_CENT).quantize(Decimal("1e-12"))
        text = format(value.normalize(), "f")
        return text


@dataclass(frozen=True)
class Preview:
    id: str
    account_id: str
    period_start: datetime
    period_end: datetime
    lines: list[PreviewLine]
    total: int  # ledger units
    credits: int  # ledger units applied from the prepaid balance
    due: int  # ledger units not covered by credits


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """[first instant of this UTC calendar month, first instant of the next)."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


async def issue_invoice(
    conn: AsyncConnection,
    account_id: str,
    *,
    origin: str,
    status: str,
    amount_due: int,
    description: str,
    now: datetime,
    seller: Seller,
) -> Invoice:
    """Number (gap-free, see billing.numbering) and store a new invoice (cents), with the
    seller, tax and the buyer's billing info frozen into it (billing.parties)."""
    invoice = Invoice(
        id=new_id("in"),
        account_id=account_id,
        number=await numbering.next_invoice_number(conn, account_id),
        status=status,
        origin=origin,
        currency="usd",
        amount_due=amount_due,
        amount_paid=0,
        description=description,
        attempt_count=0,
        pdf_key=new_secret(24),
        created_at=now,
        paid_at=now if status == "paid" else None,
        parties=await parties.snapshot(conn, account_id, seller),
    )
    await repo.insert_invoice(conn, invoice)
    return invoice


async def get_invoice(conn: AsyncConnection, invoice_id: str) -> Invoice:
    invoice = await repo.get_invoice(conn, invoice_id)
    if invoice is None:
        raise NotFound(f"no invoice {invoice_id!r}")
    return invoice


async def record_charge_attempt(conn: AsyncConnection, invoice: Invoice, outcome: str, now: datetime) -> None:
    """A card charge of the invoice answered: `paid`, `pending` (3-D Secure) or `failed`
    (the invoice becomes uncollectible)."""
    values: dict[str, object] = {"attempt_count": max(invoice.attempt_count, 1)}
    if outcome == "paid":
        values.update(status="paid", amount_paid=invoice.amount_due, paid_at=now)
    elif outcome == "failed":
        values["status"] = "uncollectible"
    await repo.update_invoice(conn, invoice.id, values)


async def list_invoices(
    conn: AsyncConnection, account_id: str, *, kind: str = "all", page: int = 1, per_page: int = 20
) -> InvoicePage:
    """Newest first. `kind` is all | manual | auto (the invoice's origin); monthly statements
    (origin `statement`) are listed under all."""
    origins = INVOICE_TYPES.get(kind)
    if origins is None:
        raise ValidationError("type must be one of auto, manual, all", field="type")
    if page < 1:
        raise ValidationError("page must be >= 1", field="page")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValidationError(f"per_page must be between 1 and {MAX_PER_PAGE}", field="per_page")
    await ledger.get_account(conn, account_id)
    total = await repo.count_invoices(conn, account_id, origins)
    rows = await repo.list_invoices(conn, account_id, origins, limit=per_page, offset=(page - 1) * per_page)
    return InvoicePage(rows, page, per_page, total)


async def invoice_for_download(conn: AsyncConnection, invoice_id: str, key: str) -> Invoice:
    """The invoice if `key` is its PDF key; NotFound otherwise (a wrong key reveals nothing)."""
    invoice = await repo.get_invoice(conn, invoice_id)
    if invoice is None or not hmac.compare_digest(invoice.pdf_key.encode(), key.encode()):
        raise NotFound("no such invoice")
    return invoice


async def preview(conn: AsyncConnection, account_id: str, now: datetime) -> Preview:
    """The current calendar month's usage as a draft invoice. Prepaid credit covers usage first;
    what the balance does not cover (its negative part, up to the month's usage) is due."""
    account = await ledger.get_account(conn, account_id)
    start, end = month_bounds(now)
    rows = await metering.usage_by_model(conn, account_id, start, end)
    total = sum(int(r.cost) for r in rows)
    due = min(total, max(0, -int(account.balance)))
    remaining_credit = total - due
    lines: list[PreviewLine] = []
    for r in rows:
        cost = int(r.cost)
        credit = min(cost, remaining_credit)
        remaining_credit -= credit
        lines.append(
            PreviewLine(
                provider=r.provider,
                model=r.model,
                events=int(r.events),
                input_tokens=int(r.input_tokens),
                output_tokens=int(r.output_tokens),
                cached_tokens=int(r.cached_tokens),
                cost=cost,
                credit=credit,
            )
        )
    preview_id = f"upcoming_in_{start:%Y%m}_{account_id}"
    return Preview(preview_id, account_id, start, end, lines, total, total - due, due)
