"""Invoice and statement PDFs a customer accepts, on SQLite and PostgreSQL: the seller and tax
from settings, the buyer's billing info, a tax line, "Statement" with its billing period,
cached tokens in the lines, and Noto Sans embedded so Latin with diacritics, Greek and
Cyrillic extract (pypdf) exactly as written; CJK through an operator-supplied extra font."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf
import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen

from creditgate.billing import tax
from creditgate.billing.invoices import Invoice
from creditgate.billing.pdf import InvoiceDocument, Party, money, render
from creditgate.config import Settings
from tests import support
from tests.autotopup_support import World, account_with_card, world
from tests.cloudflare_support import billing, funded_account, pdf_text

BUYER = "Müller Ζήτα Жук"
SELLER = {
    "seller_name": "Gateway Operator Sàrl",
    "seller_address": "Rue du Marché 1\\n1204 Genève\\nCH",
    "seller_tax_id": "CHE-123.456.789 MWST",
    "tax_rate_bps": 810,
    "tax_name": "MWST",
}


@pytest.fixture
def w(fresh_database_url: str, tmp_path: Path) -> Iterator[World]:
    with world(fresh_database_url, tmp_path, **SELLER) as live:
        yield live


def _put_billing_info(server: support.LiveServer, account: str, body: dict[str, Any]) -> Any:
    with server.admin() as c:
        return c.put(f"/admin/v1/accounts/{account}/billing-info", json=body)


def test_statement_pdf_for_a_unicode_buyer(w: World) -> None:
    account = support.create_account(w.server, mode="postpaid", postpaid_limit_cents=100_000)
    r = _put_billing_info(
        w.server,
        account,
        {
            "name": BUYER,
            "address": {"line1": "Hauptstraße 5", "postal_code": "10115", "city": "Berlin", "country": "de"},
            "tax_id_type": "eu_vat",
            "tax_number": "DE123456789",
        },
    )
    assert r.status_code == 200, r.text
    support.grant(w.server, account, 300)
    token = support.create_token(w.server, account, "gateway")
    event = {"id": "s1", "account_id": account, "model": "gpt-4o", "provider": "openai", "cost_usd": "5.00"}
    event |= {"input_tokens": 1000, "output_tokens": 100, "cached_tokens": 300}
    with w.server.client(token) as c:
        assert c.post("/v1/gateway/usage", json={"events": [event]}).json()["accepted"] == 1
    w.advance(days=16)  # 2030-07-01 12:00: June is closable
    assert w.run_jobs("close_periods")["close_periods"] == 1
    page = billing(w.server, support.create_token(w.server, account, "read")).invoice_history(
        account_id=account, type="all"
    )
    [june] = [i for i in page.invoices if i.invoice_origin == "statement"]
    assert june.amount_due == 200
    text = pdf_text(june.invoice_pdf)
    lines = text.splitlines()
    assert lines[0] == "Statement" and "Invoice" not in text
    assert BUYER in lines, "the buyer's name extracts with its exact characters"
    assert "Billing period: 2030-06-01 to 2030-06-30 (UTC)" in lines
    assert f"Statement number: {june.number}" in lines
    assert "1,000 input tokens (300 cached), 100 output tokens" in text.replace("\n", " ")
    for seller_line in (
        "Gateway Operator Sàrl",
        "Rue du Marché 1",
        "1204 Genève",
        "Tax ID: CHE-123.456.789 MWST",
    ):
        assert seller_line in lines, seller_line
    for buyer_line in ("Hauptstraße 5", "10115 Berlin", "DE", "Tax ID: DE123456789 (eu_vat)"):
        assert buyer_line in lines, buyer_line
    split = tax.split(200, 810)
    assert (split.net, split.tax) == (185, 15)
    assert f"Amount due excl. MWST {money(split.net)}" in lines
    assert f"MWST (8.1%, included) {money(split.tax)}" in lines
    assert "Amount due $2.00" in lines


def test_topup_invoice_names_the_seller_and_the_account_and_splits_the_tax(w: World) -> None:
    account, token = account_with_card(w, name="Zürich Labs")
    topup = billing(w.server, token).topup.create(account_id=account, amount=1000)
    [invoice] = billing(w.server, token).invoice_history(account_id=account).invoices
    assert invoice.id == topup.payment_intent_id
    lines = pdf_text(invoice.invoice_pdf).splitlines()
    assert lines[0] == "Invoice"
    assert "Zürich Labs" in lines and f"Account {account}" in lines, "no billing info: the account's name"
    assert "Gateway Operator Sàrl" in lines and "Tax ID: CHE-123.456.789 MWST" in lines
    split = tax.split(1000, 810)
    assert split.net + split.tax == 1000
    assert f"MWST (8.1%, included) {money(split.tax)}" in lines
    assert f"Invoice number: {invoice.number}" in lines


def test_no_tax_configured_prints_a_zero_tax_line(server: support.LiveServer) -> None:
    account, token = funded_account(server)
    billing(server, token).topup.create(account_id=account, amount=2500)
    [invoice] = billing(server, token).invoice_history(account_id=account).invoices
    lines = pdf_text(invoice.invoice_pdf).splitlines()
    assert "Tax (0%, included) $0.00" in lines and "Amount due excl. Tax $25.00" in lines
    assert "creditgate" in lines, "the default seller name"


def test_tax_rounding_is_exact_and_half_away_from_zero() -> None:
    assert tax.included_tax(1000, 0) == 0
    assert tax.included_tax(12000, 2000) == 2000  # 20% of 10000 net
    assert tax.included_tax(1, 10_000) == 1  # 0.5 cent rounds away from zero
    assert tax.included_tax(-1, 10_000) == -1
    assert tax.included_tax(3, 10_000) == 2  # 1.5 -> 2
    assert tax.included_tax(200, 810) == 15  # 14.98...
    for rate in (0, 1, 550, 810, 1925, 2000, 2100, 10_000):
        for gross in range(-300, 3001, 7):
            split = tax.split(gross, rate)
            assert split.net + split.tax == gross
            exact = gross * rate / (10_000 + rate)
            assert abs(split.tax - exact) <= 0.5
    with pytest.raises(ValueError):
        tax.included_tax(100, 10_001)
    assert [tax.rate_text(r) for r in (0, 2000, 1925, 550, 810, 5)] == [
        "0%",
        "20%",
        "19.25%",
        "5.5%",
        "8.1%",
        "0.05%",
    ]


def _one_glyph_font(path: Path, char: str) -> None:
    """A minimal TrueType font whose only drawn glyph is a square for `char`."""
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder([".notdef", "square"])
    fb.setupCharacterMap({ord(char): "square"})
    pen = TTGlyphPen(None)
    pen.moveTo((100, 0))
    pen.lineTo((100, 700))
    pen.lineTo((800, 700))
    pen.lineTo((800, 0))
    pen.closePath()
    square = pen.glyph()
    fb.setupGlyf({".notdef": TTGlyphPen(None).glyph(), "square": square})
    fb.setupHorizontalMetrics({".notdef": (500, 0), "square": (900, 100)})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "TestCJK", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200)
    fb.setupPost()
    fb.save(str(path))


def test_characters_noto_sans_lacks_come_from_the_extra_fonts(tmp_path: Path) -> None:
    font = tmp_path / "cjk.ttf"
    _one_glyph_font(font, "株")
    invoice = Invoice(
        id="in_x",
        account_id="a",
        number="ABC-0001",
        status="paid",
        origin="manual",
        currency="usd",
        amount_due=500,
        amount_paid=500,
        description="Prepaid credits top-up",
        attempt_count=1,
        pdf_key="k",
        created_at=datetime(2030, 1, 2, tzinfo=UTC),
        paid_at=datetime(2030, 1, 2, tzinfo=UTC),
    )
    buyer = Party(f"{BUYER} 株")

    def extract(extra: tuple[str, ...]) -> str:
        doc = InvoiceDocument(invoice, Party("Seller"), buyer, extra_fonts=extra)
        return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(render(doc))).pages)

    assert "株" not in extract(())
    with_extra = extract((str(font),))
    assert "株" in with_extra and BUYER in with_extra
    settings = Settings(
        database_url="sqlite+aiosqlite://", data_dir=tmp_path, invoice_extra_fonts=(str(font),)
    )
    assert settings.invoice_extra_fonts == (str(font),)
    with pytest.raises(ValueError, match="CREDITGATE_INVOICE_EXTRA_FONTS"):
        Settings(database_url="sqlite+aiosqlite://", data_dir=tmp_path, invoice_extra_fonts=("/nope.ttf",))


def test_seller_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CREDITGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CREDITGATE_SELLER_NAME", "Ζήτα AE")
    monkeypatch.setenv("CREDITGATE_SELLER_TAX_ID", "EL123456789")
    monkeypatch.setenv("CREDITGATE_TAX_RATE_BPS", "2400")
    settings = Settings.from_env()
    assert (settings.seller_name, settings.seller_tax_id, settings.tax_rate_bps) == (
        "Ζήτα AE",
        "EL123456789",
        2400,
    )
    assert (settings.seller_address, settings.tax_name, settings.invoice_extra_fonts) == (None, "Tax", ())
    for bad in ("-1", "10001", "twenty"):
        monkeypatch.setenv("CREDITGATE_TAX_RATE_BPS", bad)
        with pytest.raises(ValueError, match="CREDITGATE_TAX_RATE_BPS"):
            Settings.from_env()
