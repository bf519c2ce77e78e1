"""Render an invoice as a one-page PDF (fpdf2, built-in Helvetica, no external files)."""

from __future__ import annotations

from collections.abc import Sequence

from fpdf import FPDF

from creditgate.billing.invoices import Invoice

_STATUS_WORDS = {
    "draft": "Draft",
    "open": "Open (awaiting payment)",
    "paid": "Paid",
    "uncollectible": "Unpaid (payment failed)",
    "void": "Void",
}


def money(cents: int, currency: str = "usd") -> str:
    """Whole cents as "$1,234.56" (USD) or "1,234.56 EUR"."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    text = f"{whole:,}.{rest:02d}"
    return f"{sign}${text}" if currency.lower() == "usd" else f"{sign}{text} {currency.upper()}"


def _latin1(text: str) -> str:
    """The core PDF fonts are Latin-1: anything else becomes '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render_invoice_pdf(
    invoice: Invoice,
    account_name: str,
    issuer: str = "creditgate",
    lines: Sequence[tuple[str, int]] | None = None,
) -> bytes:
    """One page. `lines` are (description, cents) rows (a statement's usage lines); without
    them the invoice's description is its one line."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"Invoice {invoice.number}")
    pdf.set_author(issuer)
    pdf.set_creation_date(invoice.created_at)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 12, "Invoice", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    facts = [
        ("Invoice number", invoice.number),
        ("Invoice ID", invoice.id),
        ("Date of issue", f"{invoice.created_at:%Y-%m-%d %H:%M} UTC"),
        ("Status", _STATUS_WORDS.get(invoice.status, invoice.status)),
        ("Bill to", f"{account_name} (account {invoice.account_id})"),
    ]
    if invoice.paid_at is not None:
        facts.append(("Paid on", f"{invoice.paid_at:%Y-%m-%d %H:%M} UTC"))
    for label, value in facts:
        pdf.cell(45, 7, label + ":")
        pdf.cell(0, 7, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(130, 8, "Description", border="B")
    pdf.cell(0, 8, "Amount", border="B", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    rows = lines if lines is not None else [(invoice.description or "Prepaid credits", invoice.amount_due)]
    for text, cents in rows:
        pdf.cell(130, 8, _latin1(text)[:70])
        pdf.cell(0, 8, money(cents, invoice.currency), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    totals = [
        ("Amount due", invoice.amount_due),
        ("Amount paid", invoice.amount_paid),
        ("Amount remaining", invoice.amount_remaining),
    ]
    for label, cents in totals:
        pdf.set_font("Helvetica", "B" if label == "Amount due" else "", 11)
        pdf.cell(130, 7, label, align="R")
        pdf.cell(0, 7, money(cents, invoice.currency), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font("Helvetica", "I", 9)
    note = f"Prepaid credits issued by {_latin1(issuer)}. Amounts in {invoice.currency.upper()}."
    if lines is not None:
        note = (
            f"Usage statement issued by {_latin1(issuer)}. Amounts in {invoice.currency.upper()}; each "
            "line is rounded to the cent, the totals are computed from the exact amounts."
        )
    pdf.multi_cell(0, 5, note)
    return bytes(pdf.output())
