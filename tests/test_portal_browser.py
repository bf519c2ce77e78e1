"""The billing portal in a real browser (headless chromium through Playwright), on SQLite and
PostgreSQL: the flows a customer goes through, and the attacks a portal must shrug off."""

from __future__ import annotations

import io

import pypdf
from playwright.sync_api import Browser, Page, expect

from creditgate.money import cents
from tests import support
from tests.cloudflare_support import add_card, billing, funded_account
from tests.portal_support import link_path, portal_link
from tests.support import LiveServer


def open_portal(page: Page, server: LiveServer, account_id: str) -> None:
    page.goto(link_path(portal_link(server, account_id)))
    expect(page).to_have_url(server.base_url + "/portal")


def pay(page: Page, amount: str, card: str | None = None) -> None:
    page.goto("/portal/top-up")
    if card is not None:
        page.get_by_label("Card number").fill(card)
    page.get_by_label("Other amount (USD)").fill(amount)
    page.get_by_role("button", name="Pay", exact=True).click()


def test_open_a_portal_link_and_see_the_balance(page: Page, server: LiveServer) -> None:
    account = support.create_account(server, name="Balance Co")
    support.grant(server, account, 1234)
    open_portal(page, server, account)
    expect(page.get_by_role("heading", level=1)).to_have_text("Balance")
    expect(page.get_by_test_id("available")).to_have_text("$12.34")
    expect(page.get_by_test_id("held")).to_have_text("$0.00")
    expect(page.locator("header")).to_contain_text("Balance Co")


def test_a_postpaid_account_sees_its_allowance(page: Page, server: LiveServer) -> None:
    account = support.create_account(server, mode="postpaid", postpaid_limit_cents=50000)
    support.grant(server, account, 1000)
    open_portal(page, server, account)
    expect(page.get_by_test_id("allowance")).to_have_text("$500.00")
    expect(page.get_by_test_id("available")).to_have_text("$510.00")


def test_promotional_grants_show_their_expiry_in_the_browsers_zone(
    browser: Browser, server: LiveServer
) -> None:
    account = support.create_account(server)
    with server.admin() as c:
        body = {"amount_cents": 500, "reason": "Welcome credit", "expires_at": "2999-01-31T20:00:00Z"}
        assert c.post(f"/admin/v1/accounts/{account}/grants", json=body).status_code == 201
    context = browser.new_context(base_url=server.base_url, timezone_id="Asia/Tokyo", locale="en-US")
    try:
        page = context.new_page()
        open_portal(page, server, account)
        row = page.get_by_role("row", name="Welcome credit")
        expect(row).to_contain_text("$5.00")
        expiry = row.locator("time").last
        expect(expiry).to_have_attribute("datetime", "2999-01-31T20:00:00Z")
        expect(expiry).to_have_attribute("title", "2999-01-31 20:00 UTC")  # UTC on hover
        expect(expiry).to_contain_text("Feb 1, 2999")  # 05:00 the next day in Tokyo
        expect(expiry).to_contain_text("GMT+9")
    finally:
        context.close()


def test_top_up_with_a_test_card_and_see_the_balance_and_the_invoice(page: Page, server: LiveServer) -> None:
    account = support.create_account(server)
    open_portal(page, server, account)
    pay(page, "25", card="4242424242424242")
    expect(page).to_have_url(server.base_url + "/portal")
    expect(page.get_by_role("status")).to_have_text("$25.00 was added to your balance.")
    expect(page.get_by_test_id("available")).to_have_text("$25.00")
    assert support.balance_units(server, account) == cents(2500)
    page.get_by_role("link", name="Invoices").click()
    row = page.get_by_test_id("invoice-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("paid")
    expect(row).to_contain_text("$25.00")
    # a preset amount is one click on the saved default card
    page.goto("/portal/top-up")
    expect(page.get_by_text("Visa ending 4242")).to_be_visible()
    page.get_by_role("button", name="$10.00").click()
    expect(page.get_by_test_id("available")).to_have_text("$35.00")


def test_a_declined_card_shows_the_message_and_credits_nothing(page: Page, server: LiveServer) -> None:
    account = support.create_account(server)
    open_portal(page, server, account)
    pay(page, "40.00", card="4000000000000341")
    expect(page.get_by_test_id("form-error")).to_contain_text("Your card was declined.")
    expect(page.get_by_label("Other amount (USD)")).to_have_value("40.00")
    assert support.balance_units(server, account) == 0
    page.goto("/portal")
    expect(page.get_by_test_id("available")).to_have_text("$0.00")


def test_the_3d_secure_card_shows_the_sandbox_step(page: Page, server: LiveServer) -> None:
    account = support.create_account(server)
    open_portal(page, server, account)
    pay(page, "15", card="4000002500003155")
    expect(page.get_by_role("heading", name="3-D Secure")).to_be_visible()
    expect(page.get_by_text("Needs authentication")).to_be_visible()
    assert support.balance_units(server, account) == 0
    page.get_by_role("button", name="Complete authentication").click()
    expect(page.get_by_test_id("available")).to_have_text("$15.00")
    # failing the step credits nothing and says why
    pay(page, "20")
    page.get_by_role("button", name="Fail authentication").click()
    expect(page.get_by_role("alert")).to_contain_text("failed 3-D Secure authentication")
    assert support.balance_units(server, account) == cents(1500)


def test_auto_top_up_and_spending_limit_read_back_through_the_cloudflare_sdk(
    page: Page, server: LiveServer
) -> None:
    account, token = funded_account(server)
    open_portal(page, server, account)
    page.get_by_role("link", name="Auto top-up").click()
    expect(page.get_by_test_id("auto-status")).to_contain_text("Off")
    page.get_by_label("When the balance falls below (USD)").fill("10")
    page.get_by_label("Add this amount (USD)").fill("25.50")
    page.get_by_label("At most per month (USD, optional)").fill("100")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("auto-status")).to_contain_text("Active")
    page.get_by_role("link", name="Spending limit").click()
    page.get_by_label("Limit (USD)").fill("75.25")
    page.get_by_label("Per").select_option(label="Week")
    page.get_by_label("Sliding").check()
    page.get_by_role("button", name="Save limit").click()
    expect(page.get_by_test_id("limit-usage")).to_contain_text("$0.00 used of $75.25; $75.25 remains.")
    sdk = billing(server, token)
    config = sdk.topup.config.get(account_id=account)
    assert (config.amount, config.threshold) == (2550, 1000)
    limit = sdk.spending_limit.get(account_id=account)
    assert limit.enabled and (limit.config.amount, limit.config.duration, limit.config.strategy) == (
        7525,
        "weekly",
        "sliding",
    )
    with server.admin() as c:
        assert c.get(f"/admin/v1/accounts/{account}/auto-topup").json()["monthly_cap"] == 10000
    # a bad value shows the rule and keeps the saved limit
    page.get_by_label("Limit (USD)").fill("0.50")
    page.get_by_role("button", name="Save limit").click()
    expect(page.get_by_test_id("form-error")).to_contain_text(
        "amount must be between $1.00 and $1,000,000.00"
    )
    assert sdk.spending_limit.get(account_id=account).config.amount == 7525


def test_download_an_invoice_pdf(page: Page, server: LiveServer) -> None:
    account = support.create_account(server, name="PDF Buyer Ltd")
    open_portal(page, server, account)
    pay(page, "12.00", card="4242424242424242")
    page.goto("/portal/invoices")
    number = page.get_by_test_id("invoice-row").locator("td").first.inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name=f"Download invoice {number}").click()
    path = download.value.path()
    reader = pypdf.PdfReader(io.BytesIO(path.read_bytes()))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert number in text and "12.00" in text


def test_a_reused_link_gets_a_clear_page(page: Page, server: LiveServer) -> None:
    account = support.create_account(server)
    link = link_path(portal_link(server, account))
    page.goto(link)
    expect(page).to_have_url(server.base_url + "/portal")
    page.context.clear_cookies()
    response = page.goto(link)
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")
    expect(page.get_by_text("already been used")).to_be_visible()


def test_a_read_session_cannot_change_anything(page: Page, server: LiveServer) -> None:
    account, _ = funded_account(server)
    page.goto("/portal/sign-in")
    page.get_by_label("Token").fill(support.create_token(server, account, "read"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("read-only").first).to_be_visible()
    page.goto("/portal/spending-limit")
    expect(page.get_by_role("button", name="Save limit")).to_be_disabled()
    # the browser would not send it; forced through anyway, the server refuses it
    page.evaluate("document.querySelectorAll('fieldset').forEach(f => f.disabled = false)")
    page.get_by_label("Limit (USD)").fill("5")
    page.get_by_role("button", name="Save limit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_text("This session is read-only")).to_be_visible()
    with server.client(support.create_token(server, account, "read")) as c:
        r = c.get(f"/client/v4/accounts/{account}/ai-gateway/billing/spending-limit")
        assert r.json()["result"]["enabled"] is False


def test_another_accounts_ids_in_urls_and_forms_reach_nothing(page: Page, server: LiveServer) -> None:
    mine, _ = funded_account(server)
    theirs, _ = funded_account(server)
    their_card = add_card(server, theirs, "5555555555554444")["payment_method_id"]
    open_portal(page, server, mine)
    page.goto("/portal/payment-methods")
    page.evaluate(
        "id => document.querySelectorAll('input[name=payment_method_id]').forEach(i => i.value = id)",
        their_card,
    )
    page.get_by_role("button", name="Remove").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    with server.admin() as c:
        cards = c.get(f"/admin/v1/accounts/{theirs}/cards").json()["cards"]
        assert their_card in [card["payment_method_id"] for card in cards]
    response = page.goto(f"/portal/top-up/{theirs}")
    assert response is not None and response.status == 404


def test_a_form_without_its_csrf_token_is_refused(page: Page, server: LiveServer) -> None:
    account = support.create_account(server)
    open_portal(page, server, account)
    page.goto("/portal/billing-info")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(i => i.remove())")
    page.get_by_label("Name", exact=True).fill("Forged Inc")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_text("security token")).to_be_visible()
    with server.admin() as c:
        assert c.get(f"/admin/v1/accounts/{account}/billing-info").status_code == 404


def test_an_account_name_with_markup_renders_as_text(page: Page, server: LiveServer) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    account = support.create_account(server, name="<script>alert(1)</script>")
    open_portal(page, server, account)
    expect(page.locator("header")).to_contain_text("<script>alert(1)</script>")
    assert page.locator("script:not([src])").count() == 0
    page.goto("/portal/billing-info")
    page.get_by_label("Name", exact=True).fill('"><img src=x onerror=alert(2)>')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("Name", exact=True)).to_have_value('"><img src=x onerror=alert(2)>')
    assert page.locator("img").count() == 0
    assert dialogs == []
