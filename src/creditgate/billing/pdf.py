"""Render an invoice or a monthly statement as a PDF (fpdf2, Noto Sans embedded).

The font is Noto Sans (SIL OFL 1.1) from the `fontpkg-noto-sans` package: Latin with
diacritics, Greek, Cyrillic and Vietnamese render as written. Characters it lacks (CJK, for
one) are drawn from the operator's extra fonts (`CREDITGATE_INVOICE_EXTRA_FONTS`, e.g. a
Noto Sans CJK file) when given; otherwise they are left out and the rest still renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from creditgate.billing import tax as taxes
from creditgate.billing.invoices import Invoice

FONT = "notosans"
_FONT_FILE = "NotoSans[wdth,wght].ttf"  # a variable font; its default instance is Regular
_STATUS_WORDS = {
    "draft": "Draft",
    "open": "Open (awaiting payment)",
    "paid": "Paid",
    "uncollectible": "Unpaid (payment failed)",
    "void": "Void",
}


@dataclass(frozen=True)
class Party:
    """A seller or buyer block: a name, then address lines, then a tax id line."""

    name: str
    address: tuple[str, ...] = ()
    tax_id: str | None = None
    extra: tuple[str, ...] = ()  # e.g. an email, the account id


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything printed on one invoice or statement."""

    invoice: Invoice
    seller: Party
    buyer: Party
    tax_name: str = "Tax"
    tax_rate_bps: int = 0
    lines: Sequence[tuple[str, int]] | None = None  # (description, cents); None: the description
    period: tuple[datetime, datetime] | None = None  # a statement's [start, end)
    extra_fonts: tuple[str, ...] = ()

    @property
    def is_statement(self) -> bool:
        return self.invoice.origin == "statement"


def font_path() -> Path:
    """The embedded font file, shipped by the fontpkg-noto-sans wheel."""
    return Path(str(resources.files("fontpkg_noto_sans") / "files" / _FONT_FILE))


def money(cents: int, currency: str = "usd") -> str:
    """Whole cents as "$1,234.56" (USD) or "1,234.56 EUR"."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    text = f"{whole:,}.{rest:02d}"
    return f"{sign}${text}" if currency.lower() == "usd" else f"{sign}{text} {currency.upper()}"


def period_text(start: datetime, end: datetime) -> str:
    """[start, end) as the inclusive days it covers: "2026-06-01 to 2026-06-30 (UTC)"."""
    return f"{start:%Y-%m-%d} to {end - timedelta(days=1):%Y-%m-%d} (UTC)"


def _setup(doc: InvoiceDocument, title: str) -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_author(doc.seller.name)
    pdf.set_creation_date(doc.invoice.created_at)
    path = font_path()
    pdf.add_font(FONT, "", path)  # regular only: instancing a bold face takes seconds
    fallbacks = []
    for index, extra in enumerate(doc.extra_fonts):
        pdf.add_font(f"extra{index}", "", extra)
        fallbacks.append(f"extra{index}")
    if fallbacks:
        pdf.set_fallback_fonts(fallbacks)
    pdf.add_page()
    return pdf


def _heading(pdf: FPDF, text: str, size: float) -> None:
    """Bold by stroking the outline (the variable font has no static bold face embedded)."""
    pdf.set_font(FONT, size=size)
    with pdf.local_context(text_mode="FILL_STROKE", line_width=size / 60):
        pdf.cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")


def _party(pdf: FPDF, label: str, party: Party, x: float, y: float, width: float) -> float:
    pdf.set_xy(x, y)
    pdf.set_font(FONT, size=8)
    pdf.set_text_color(90)
    pdf.cell(width, 5, label.upper(), new_x="LEFT", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.set_font(FONT, size=10)
    with pdf.local_context(text_mode="FILL_STROKE", line_width=0.15):
        pdf.multi_cell(width, 5, party.name, new_x="LEFT", new_y="NEXT")
    for line in (*party.address, *((f"Tax ID: {party.tax_id}",) if party.tax_id else ()), *party.extra):
        pdf.multi_cell(width, 5, line, new_x="LEFT", new_y="NEXT")
    return pdf.get_y()


def render(doc: InvoiceDocument) -> bytes:
    """One document; long tables flow onto further pages."""
    invoice = doc.invoice
    kind = "Statement" if doc.is_statement else "Invoice"
    pdf = _setup(doc, f"{kind} {invoice.number}")
    _heading(pdf, kind, 22)
    pdf.ln(4)
    top = pdf.get_y()
    width = (pdf.epw - 10) / 2
    bottom = max(
        _party(pdf, "From", doc.seller, pdf.l_margin, top, width),
        _party(pdf, "Bill to", doc.buyer, pdf.l_margin + width + 10, top, width),
    )
    pdf.set_xy(pdf.l_margin, bottom + 6)
    pdf.set_font(FONT, size=10)
    facts = [
        (f"{kind} number", invoice.number),
        (f"{kind} ID", invoice.id),
        ("Date of issue", f"{invoice.created_at:%Y-%m-%d %H:%M} UTC"),
    ]
    if doc.period is not None:
        facts.append(("Billing period", period_text(*doc.period)))
    facts.append(("Status", _STATUS_WORDS.get(invoice.status, invoice.status)))
    if invoice.paid_at is not None:
        facts.append(("Paid on", f"{invoice.paid_at:%Y-%m-%d %H:%M} UTC"))
    for label, value in facts:
        pdf.cell(40, 6, label + ":")
        pdf.multi_cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    rows = (
        doc.lines
        if doc.lines is not None
        else [(invoice.description or "Prepaid credits", invoice.amount_due)]
    )
    heading = FontFace(emphasis="NONE", fill_color=(235, 235, 235))
    with pdf.table(
        col_widths=(145, 45),
        text_align=("LEFT", "RIGHT"),
        headings_style=heading,
        borders_layout="HORIZONTAL_LINES",
        line_height=6,
    ) as table:
        header = table.row()
        header.cell("Description")
        header.cell("Amount")
        for text, cents in rows:
            row = table.row()
            row.cell(text)
            row.cell(money(cents, invoice.currency))
    pdf.ln(4)
    split = taxes.split(invoice.amount_due, doc.tax_rate_bps)
    totals = [
        (f"Amount due excl. {doc.tax_name}", split.net),
        (f"{doc.tax_name} ({taxes.rate_text(doc.tax_rate_bps)}, included)", split.tax),
        ("Amount due", invoice.amount_due),
        ("Amount paid", invoice.amount_paid),
        ("Amount remaining", invoice.amount_remaining),
    ]
    for label, cents in totals:
        pdf.cell(145, 6, label, align="R")
        pdf.cell(0, 6, money(cents, invoice.currency), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font(FONT, size=8)
    pdf.multi_cell(0, 4, _note(doc))
    return bytes(pdf.output())


def _note(doc: InvoiceDocument) -> str:
    currency = doc.invoice.currency.upper()
    tax = f"Amounts in {currency}, {doc.tax_name} included; the {doc.tax_name} is rounded to the cent."
    if doc.is_statement:
        return (
            f"Usage statement issued by {doc.seller.name}. {tax} Each line is rounded to the cent; "
            "the totals are computed from the exact amounts. Usage paid from prepaid credit was "
            f"invoiced, with its {doc.tax_name}, when the credit was bought."
        )
    return f"Prepaid credits issued by {doc.seller.name}. {tax}"
