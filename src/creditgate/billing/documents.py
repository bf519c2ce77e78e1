"""Assemble what an invoice PDF prints: the seller, tax and buyer frozen into the invoice when
it was issued (billing.parties), a statement's lines and billing period. An invoice issued
before the snapshot existed prints the current seller settings and billing info."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import billing_info, statements
from creditgate.billing.billing_info import BillingInfo
from creditgate.billing.invoices import Invoice
from creditgate.billing.parties import Seller
from creditgate.billing.pdf import InvoiceDocument, Party
from creditgate.ledger import service as ledger


def seller_of(invoice: Invoice, current: Seller) -> Seller:
    """The seller and tax of the invoice: frozen at issue, or `current` for an older invoice."""
    return current if invoice.parties is None else invoice.parties.seller


def seller(value: Seller) -> Party:
    return Party(value.name, value.address, value.tax_id)


async def buyer(conn: AsyncConnection, invoice: Invoice) -> Party:
    """The billing info frozen at issue (an older invoice: the current one); without one, the
    account's name (or id) alone."""
    account_id = invoice.account_id
    info: BillingInfo | None
    info = await billing_info.get_info(conn, account_id) if invoice.parties is None else invoice.parties.buyer
    account_line = f"Account {account_id}"
    if info is None:
        account = await ledger.get_account(conn, account_id)
        return Party(account.name or account_id, extra=(account_line,))
    tax_id = info.tax_number
    if tax_id and info.tax_id_type:
        tax_id = f"{tax_id} ({info.tax_id_type})"
    extra = (info.email, account_line) if info.email else (account_line,)
    return Party(info.name, tuple(info.address.lines()), tax_id, extra)


async def document(
    conn: AsyncConnection, invoice: Invoice, current: Seller, extra_fonts: tuple[str, ...] = ()
) -> InvoiceDocument:
    """The invoice as issued; `current` is the configured seller, used only by invoices issued
    before the snapshot existed."""
    issued_by = seller_of(invoice, current)
    return InvoiceDocument(
        invoice=invoice,
        seller=seller(issued_by),
        buyer=await buyer(conn, invoice),
        tax_name=issued_by.tax_name,
        tax_rate_bps=issued_by.tax_rate_bps,
        lines=await statements.pdf_lines(conn, invoice),
        period=await statements.period_of(conn, invoice),
        extra_fonts=extra_fonts,
    )
