"""The portal's pages over plain HTTP: each renders for write and read sessions, a read
session changes nothing, another account's ids are not found, and bad input changes nothing
(the browser tests walk the same pages in chromium)."""

from __future__ import annotations

import re

from tests import support
from tests.cloudflare_support import add_card, funded_account
from tests.portal_support import csrf, portal_client, post_form, token_client
from tests.support import LiveServer

PAGES = (
    "/portal",
    "/portal/top-up",
    "/portal/auto-top-up",
    "/portal/spending-limit",
    "/portal/invoices",
    "/portal/payment-methods",
    "/portal/billing-info",
)
CHANGES = {
    "/portal/top-up": {"amount": "25.00", "request_key": "k1"},
    "/portal/auto-top-up": {"amount": "25", "threshold": "10"},
    "/portal/auto-top-up/off": {},
    "/portal/spending-limit": {"amount": "50", "duration": "daily", "strategy": "fixed"},
    "/portal/spending-limit/remove": {},
    "/portal/payment-methods": {"card": "4242424242424242"},
    "/portal/payment-methods/default": {"payment_method_id": "x"},
    "/portal/payment-methods/remove": {"payment_method_id": "x"},
    "/portal/billing-info": {"name": "Changed"},
}


def test_every_page_renders(server: LiveServer) -> None:
    account, _ = funded_account(server)
    with portal_client(server, account) as browser:
        for path in PAGES:
            r = browser.get(path)
            assert r.status_code == 200, (path, r.text)
            assert 'aria-current="page"' in r.text and "<script>" not in r.text, path


def test_a_read_session_sees_everything_and_changes_nothing(server: LiveServer) -> None:
    account, _ = funded_account(server)
    reader = support.create_token(server, account, "read")
    before = support.snapshot(server.settings.database_url)
    with token_client(server, reader) as browser:
        for path in PAGES:
            r = browser.get(path)
            assert r.status_code == 200 and "read-only" in r.text, path
        token = csrf(browser.get("/portal").text)
        for action, fields in CHANGES.items():
            r = browser.post(action, data={**fields, "csrf_token": token})
            assert r.status_code == 403, (action, r.text)
            assert "read-only" in r.text
    assert support.snapshot(server.settings.database_url) == before


def test_another_accounts_ids_are_not_found(server: LiveServer) -> None:
    mine, _ = funded_account(server)
    theirs, token = funded_account(server)
    their_card = add_card(server, theirs, "5555555555554444")["payment_method_id"]
    with server.client(token) as c:
        paid = c.post(f"/client/v4/accounts/{theirs}/ai-gateway/billing/topup", json={"amount": 1500})
        assert paid.status_code == 200, paid.text
        their_invoice = paid.json()["result"]["payment_intent_id"]
    with portal_client(server, mine) as browser:
        assert browser.get(f"/portal/top-up/{their_invoice}").status_code == 404
        page = "/portal/payment-methods"
        for action in ("/portal/payment-methods/default", "/portal/payment-methods/remove"):
            r = post_form(browser, page, action, {"payment_method_id": their_card})
            assert r.status_code == 404, r.text
        r = post_form(
            browser, "/portal/top-up/x", f"/portal/top-up/{their_invoice}/authenticate", {"outcome": "fail"}
        )
        assert r.status_code == 404
        # the account in the URL is never taken from the request: the session decides
        assert their_card not in browser.get(page).text
    with server.admin() as c:
        cards = c.get(f"/admin/v1/accounts/{theirs}/cards").json()["cards"]
        assert [card["payment_method_id"] for card in cards if card["default"]] == [their_card]


def test_bad_billing_info_shows_the_message_and_changes_nothing(server: LiveServer) -> None:
    account = support.create_account(server)
    with portal_client(server, account) as browser:
        ok = post_form(
            browser, "/portal/billing-info", "/portal/billing-info", {"name": "Acme GmbH", "country": "DE"}
        )
        assert ok.status_code == 303
        r = post_form(
            browser, "/portal/billing-info", "/portal/billing-info", {"name": "Acme GmbH", "country": "XX"}
        )
        assert r.status_code == 400 and "country" in r.text
        assert re.search(r'name="country" type="text" value="XX"', r.text)  # what was typed stays
    with server.admin() as c:
        info = c.get(f"/admin/v1/accounts/{account}/billing-info").json()
        assert info["address"]["country"] == "DE"


def test_amounts_are_checked_by_the_workflows_and_explained_in_dollars(server: LiveServer) -> None:
    account, _ = funded_account(server)
    with portal_client(server, account) as browser:
        for fields, message in (
            ({"amount": "5"}, "amount must be between $10.00 and $1,000,000.00"),
            ({"amount": "10.005"}, "The amount must be in whole cents."),
            ({"amount": "ten"}, "Enter the amount as a dollar amount such as 25.00."),
            ({"amount": "-3"}, "The amount must be more than zero."),
        ):
            r = post_form(browser, "/portal/top-up", "/portal/top-up", {**fields, "request_key": "k"})
            assert r.status_code == 400 and message in r.text, (fields, r.text)
        r = post_form(
            browser, "/portal/auto-top-up", "/portal/auto-top-up", {"amount": "25", "threshold": "1"}
        )
        assert r.status_code == 400 and "threshold must be between $5.00 and" in r.text
    assert support.balance_units(server, account) == 0
