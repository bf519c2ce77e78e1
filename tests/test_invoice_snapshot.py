"""An issued invoice does not change, on SQLite and PostgreSQL: the seller, tax and buyer's
billing info are frozen into the invoice row when it is issued, so a later change of the
seller settings (a server restarted with new settings on the same database) or of the buyer's
billing info leaves the old top-up invoice and statement PDFs as they were, while a new
invoice shows the new values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditgate.billing import tax
from creditgate.billing.pdf import money
from tests import support
from tests.autotopup_support import World, account_with_card, world
from tests.cloudflare_support import add_card, billing, pdf_text
from tests.xai_support import Team, new_team

OLD_SELLER = {
    "seller_name": "Old Operator Sàrl",
    "seller_address": "Rue du Marché 1\\n1204 Genève",
    "seller_tax_id": "CHE-111.111.111 MWST",
    "tax_rate_bps": 810,
    "tax_name": "MWST",
}
NEW_SELLER = {
    "seller_name": "New Operator GmbH",
    "seller_address": "Hauptstraße 9\\n10115 Berlin",
    "seller_tax_id": "DE999999999",
    "tax_rate_bps": 1900,
    "tax_name": "USt",
}
OLD_BUYER = {
    "name": "Ζήτα Old Buyer",
    "email": "old@example.com",
    "address": {"line1": "Old Street 1", "city": "Athens", "country": "GR"},
    "tax_id_type": "eu_vat",
    "tax_number": "EL111111111",
}
NEW_BUYER = {
    "name": "Жук New Buyer",
    "email": "new@example.com",
    "address": {"line1": "New Avenue 2", "city": "Sofia", "country": "BG"},
    "tax_id_type": "eu_vat",
    "tax_number": "BG222222222",
}


@pytest.fixture
def w(fresh_database_url: str, tmp_path: Path) -> Iterator[World]:
    with world(fresh_database_url, tmp_path, **OLD_SELLER) as live:
        yield live


def _put_billing_info(server: support.LiveServer, account: str, body: dict[str, Any]) -> None:
    with server.admin() as c:
        r = c.put(f"/admin/v1/accounts/{account}/billing-info", json=body)
        assert r.status_code == 200, r.text


def _pdfs(server: support.LiveServer, account: str, token: str) -> dict[str, list[str]]:
    """Every invoice of the account, by id, as the PDF lines this server renders."""
    page = billing(server, token).invoice_history(account_id=account, type="all")
    return {i.id: pdf_text(i.invoice_pdf).splitlines() for i in page.invoices}


def _shows(lines: list[str], seller: dict[str, Any], buyer: dict[str, Any], amount_due: int) -> None:
    name = seller["seller_name"]
    for line in (name, *seller["seller_address"].split("\\n"), f"Tax ID: {seller['seller_tax_id']}"):
        assert line in lines, line
    assert buyer["name"] in lines and buyer["email"] in lines and buyer["address"]["line1"] in lines
    assert f"Tax ID: {buyer['tax_number']} ({buyer['tax_id_type']})" in lines
    rate = seller["tax_rate_bps"]
    label = f"{seller['tax_name']} ({tax.rate_text(rate)}, included)"
    assert f"{label} {money(tax.split(amount_due, rate).tax)}" in lines, label
    for other in (OLD_SELLER, NEW_SELLER):
        if other is not seller:
            assert other["seller_name"] not in lines and f"{other['tax_name']} (" not in "\n".join(lines)
    for other in (OLD_BUYER, NEW_BUYER):
        if other is not buyer:
            assert other["name"] not in lines and other["address"]["line1"] not in lines


def test_issued_invoices_keep_the_seller_tax_and_buyer_they_were_issued_with(w: World) -> None:
    account, token = account_with_card(w, name="Snapshot Labs")
    _put_billing_info(w.server, account, OLD_BUYER)
    topup = billing(w.server, token).topup.create(account_id=account, amount=2000)
    event = {"id": "u1", "account_id": account, "model": "gpt-4o", "provider": "openai", "cost_usd": "3.00"}
    event |= {"input_tokens": 1000, "output_tokens": 100, "cached_tokens": 0}
    with w.server.client(support.create_token(w.server, account, "gateway")) as c:
        r = c.post("/v1/gateway/usage", json={"events": [event]})
        assert r.json()["accepted"] == 1, r.text
    w.advance(days=16)  # June is closable
    assert w.run_jobs("close_periods")["close_periods"] == 1
    before = _pdfs(w.server, account, token)
    assert len(before) == 2 and topup.payment_intent_id in before
    [statement_id] = [i for i in before if i != topup.payment_intent_id]
    _shows(before[topup.payment_intent_id], OLD_SELLER, OLD_BUYER, 2000)
    assert before[statement_id][0] == "Statement"
    _shows(before[statement_id], OLD_SELLER, OLD_BUYER, 0)

    # The buyer changes its billing info; the operator restarts with new seller settings.
    _put_billing_info(w.server, account, NEW_BUYER)
    new_settings = w.server.settings.replace(**NEW_SELLER)
    with support.live_server(new_settings, clock=w.clock) as server:
        after = _pdfs(server, account, token)
        assert set(after) == set(before)
        for invoice_id, lines in before.items():
            assert after[invoice_id] == lines, "an issued invoice renders exactly as it did"
        billing(server, token).topup.create(account_id=account, amount=3000)
        latest = _pdfs(server, account, token)
        [new_id] = set(latest) - set(before)
        _shows(latest[new_id], NEW_SELLER, NEW_BUYER, 3000)
        for invoice_id, lines in before.items():
            assert latest[invoice_id] == lines
    # The first server, still on the old settings, renders the new invoice as issued too.
    _shows(_pdfs(w.server, account, token)[new_id], NEW_SELLER, NEW_BUYER, 3000)


def test_invoices_issued_before_the_snapshot_render_from_current_values(w: World) -> None:
    account, token = account_with_card(w, name="Legacy Labs")
    _put_billing_info(w.server, account, OLD_BUYER)
    billing(w.server, token).topup.create(account_id=account, amount=1500)
    support.query(w.url, "UPDATE invoices SET parties = NULL WHERE account_id = :a", a=account)
    _put_billing_info(w.server, account, NEW_BUYER)
    [lines] = _pdfs(w.server, account, token).values()
    _shows(lines, OLD_SELLER, NEW_BUYER, 1500)


def _xai_taxes(server: support.LiveServer, team: Team) -> dict[str, tuple[str, str, str]]:
    with server.client(team.read) as c:
        r = c.get(team.path("invoices"))
        assert r.status_code == 200, r.text
        return {i["invoiceId"]: (i["subtotal"], i["tax"], i["total"]) for i in r.json()["invoices"]}


def _split(cents: int, rate_bps: int) -> tuple[str, str, str]:
    split = tax.split(cents, rate_bps)
    return str(split.net), str(split.tax), str(split.gross)


def test_the_xai_invoice_view_keeps_the_tax_rate_of_issue(w: World) -> None:
    team = new_team(w.server)
    add_card(w.server, team.id)
    with w.server.client(team.write) as c:
        r = c.post(f"/client/v4/accounts/{team.id}/ai-gateway/billing/topup", json={"amount": 5000})
        assert r.status_code == 200, r.text
        old = r.json()["result"]["payment_intent_id"]
    assert _xai_taxes(w.server, team) == {old: _split(5000, OLD_SELLER["tax_rate_bps"])}
    with support.live_server(w.server.settings.replace(**NEW_SELLER), clock=w.clock) as server:
        with server.client(team.write) as c:
            r = c.post(f"/client/v4/accounts/{team.id}/ai-gateway/billing/topup", json={"amount": 5000})
            assert r.status_code == 200, r.text
            new = r.json()["result"]["payment_intent_id"]
        assert _xai_taxes(server, team) == {
            old: _split(5000, OLD_SELLER["tax_rate_bps"]),
            new: _split(5000, NEW_SELLER["tax_rate_bps"]),
        }
