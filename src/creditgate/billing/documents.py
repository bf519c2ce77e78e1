"""Assemble what an invoice PDF prints: the seller and tax from settings, the buyer's billing
info (or the account name), a statement's lines and billing period."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import billing_info, statements
from creditgate.billing.invoices import Invoice
from creditgate.billing.pdf import InvoiceDocument, Party
from creditgate.config import Settings
from creditgate.ledger import service as ledger


def _lines(text: str | None) -> tuple[str, ...]:
    """Address lines from a setting: split on newlines or a literal backslash-n."""
    if not text:
        return ()
    return tuple(p.strip() for p in text.replace("\\n", "\n").split("\n") if p.strip())


def seller(settings: Settings) -> Party:
    return Party(settings.seller_name, _lines(settings.seller_address), settings.seller_tax_id)


async def buyer(conn: AsyncConnection, account_id: str) -> Party:
    """The account's billing info; without one, its name (or id) alone."""
    info = await billing_info.get_info(conn, account_id)
    account_line = f"Account {account_id}"
    if info is None:
        account = await ledger.get_account(conn, account_id)
        return Party(account.name or account_id, extra=(account_line,))
    tax_id = info.tax_number
    if tax_id and info.tax_id_type:
        tax_id = f"{tax_id} ({info.tax_id_type})"
    extra = (info.email, account_line) if info.email else (account_line,)
    return Party(info.name, tuple(info.address.lines()), tax_id, extra)


async def document(conn: AsyncConnection, invoice: Invoice, settings: Settings) -> InvoiceDocument:
    """The invoice as printed today (seller and tax settings as configured now)."""
    return InvoiceDocument(
        invoice=invoice,
        seller=seller(settings),
        buyer=await buyer(conn, invoice.account_id),
        tax_name=settings.tax_name,
        tax_rate_bps=settings.tax_rate_bps,
        lines=await statements.pdf_lines(conn, invoice),
        period=await statements.period_of(conn, invoice),
        extra_fonts=settings.invoice_extra_fonts,
    )
