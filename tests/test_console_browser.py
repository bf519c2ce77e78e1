"""The operator console in a real browser (headless chromium through Playwright), on SQLite
and PostgreSQL: find an account, grant credit and see it in the ledger with its running
balance; a token shown once that works until revoked; a portal link; who cannot get in; and
an account name with markup shown as text."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.sync_api import Browser, Page, expect

from creditgate.money import parse_usd
from tests import support
from tests.browser_support import DESKTOP
from tests.portal_support import link_path, portal_link
from tests.support import LiveServer


def sign_in(page: Page, token: str = support.ADMIN_TOKEN) -> None:
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def signed_in(page: Page) -> None:
    sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Accounts")


def units(text: str) -> int:
    """A money figure as the pages show it ("-$1,234.50") in ledger units."""
    return parse_usd(text.strip().replace("$", "").replace(",", ""))


def test_find_an_account_grant_credit_and_see_it_in_the_ledger(page: Page, server: LiveServer) -> None:
    tag = uuid.uuid4().hex[:8]
    account = support.create_account(server, name=f"Findable {tag} Inc")
    support.create_account(server, name=f"Findable {tag} Other")
    support.grant(server, account, 500)
    signed_in(page)
    page.get_by_label("Find an account by id or name").fill(f"findable {tag} inc")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#accounts tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(account)
    expect(rows.first.locator("td").nth(1)).to_have_text("$5.00")  # balance
    rows.first.get_by_role("link", name=f"Findable {tag} Inc").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Findable {tag} Inc")
    expect(page.get_by_test_id("balance")).to_have_text("$5.00")

    page.get_by_label("Amount in dollars").fill("12.34")
    page.get_by_label("Reason").fill("goodwill <b>credit</b>")
    page.get_by_role("button", name="Post to the ledger").click()
    expect(page).to_have_url(re.compile(r"/ledger$"))
    expect(page.get_by_role("status")).to_contain_text("Granted $12.34")
    newest = page.locator("table.ledger tbody tr").first
    expect(newest).to_contain_text("grant")
    expect(newest).to_contain_text("goodwill <b>credit</b>")  # the reason is text, not markup
    expect(newest.get_by_test_id("amount")).to_have_text("$12.34")
    expect(newest.get_by_test_id("balance-after")).to_have_text("$17.34")

    page.get_by_role("link", name="Overview").click()
    page.get_by_label("Adjustment (a correction, may be negative)").check()
    page.get_by_label("Amount in dollars").fill("-2.00")
    page.get_by_label("Reason").fill("duplicate grant")
    page.get_by_role("button", name="Post to the ledger").click()
    expect(page.get_by_role("status")).to_contain_text("Adjusted by -$2.00")
    # every running balance is the one below it plus the entry's amount, down to zero
    amounts = [units(t) for t in page.locator("table.ledger [data-testid=amount]").all_inner_texts()]
    after = [units(t) for t in page.locator("table.ledger [data-testid=balance-after]").all_inner_texts()]
    assert amounts == [-200 * 10**7, 1234 * 10**7, 500 * 10**7]
    assert after == [sum(amounts[i:]) for i in range(len(amounts))]
    assert after[0] == support.balance_units(server, account) == 1534 * 10**7


def test_a_token_is_shown_once_works_and_revokes(page: Page, server: LiveServer) -> None:
    account = support.create_account(server, name="Token Co")
    signed_in(page)
    page.goto(f"/console/accounts/{account}")
    page.get_by_label("Scope").select_option("write")
    page.get_by_label("Name (optional)").fill("deploy bot")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("token-secret").inner_text().strip()
    assert secret.startswith("cgt_")
    balance = f"/client/v4/accounts/{account}/ai-gateway/billing/credit-balance"
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {secret}"}) as api:
        assert api.get(balance).status_code == 200
        page.goto(f"/console/accounts/{account}")  # shown once: never again
        expect(page.get_by_test_id("token-secret")).to_have_count(0)
        assert secret not in page.content()
        row = page.locator("#tokens tbody tr", has_text="deploy bot")
        expect(row).to_contain_text(secret[:10])
        expect(row).to_contain_text("active")
        row.get_by_role("button", name=re.compile("^Revoke")).click()
        expect(page.get_by_role("status")).to_contain_text("is revoked")
        expect(page.locator("#tokens tbody tr", has_text="deploy bot")).to_contain_text("revoked")
        with server.admin() as admin:
            listed = admin.get(f"/admin/v1/accounts/{account}/tokens").json()["tokens"]
        assert [t["revoked_at"] is not None for t in listed] == [True]
        assert api.get(balance).status_code in (401, 403)  # Cloudflare answers 403


def test_a_portal_link_opens_the_customer_portal(page: Page, server: LiveServer, browser: Browser) -> None:
    account = support.create_account(server, name="Linked Co")
    signed_in(page)
    page.goto(f"/console/accounts/{account}")
    page.get_by_role("button", name="Create a portal link").click()
    url = page.get_by_test_id("portal-link-url").inner_text().strip()
    customer = browser.new_context(base_url=server.base_url, viewport=DESKTOP)
    try:
        visitor = customer.new_page()
        visitor.goto("/" + url.split("/", 3)[3])
        expect(visitor).to_have_url(server.base_url + "/portal")
        expect(visitor.locator("header")).to_contain_text("Linked Co")
        visitor.goto("/console")  # a customer's session is no way into the console
        expect(visitor).to_have_url(re.compile(r"/console/sign-in$"))
    finally:
        customer.close()


def test_no_way_in_without_the_operator_token(page: Page, server: LiveServer) -> None:
    account = support.create_account(server)
    for path in (
        "/console",
        f"/console/accounts/{account}",
        f"/console/accounts/{account}/ledger",
        "/console/reconcile",
    ):
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    sign_in(page, support.create_token(server, account, "write"))
    expect(page.get_by_role("alert")).to_contain_text("operator token")
    page.goto(link_path(portal_link(server, account)))  # a portal session, in the same browser
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    sign_in(page, "not-the-token")
    expect(page.get_by_role("alert")).to_be_visible()
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))


def test_an_account_named_with_markup_renders_as_text(page: Page, server: LiveServer) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    name = "<script>alert(1)</script>"
    account = support.create_account(server, name=name)
    signed_in(page)
    page.get_by_label("Find an account by id or name").fill(account)
    page.get_by_role("button", name="Search").click()
    link = page.locator("#accounts tbody tr").first.get_by_role("link")
    expect(link).to_have_text(name)
    link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    assert page.locator("script:not([src])").count() == 0
    assert dialogs == []


def test_reconcile_status(page: Page, server: LiveServer) -> None:
    support.create_account(server)
    signed_in(page)
    page.get_by_role("link", name="Reconcile").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reconcile")
    expect(page.get_by_test_id("reconcile-ok").or_(page.get_by_test_id("reconcile-failed"))).to_be_visible()
    with server.admin() as c:
        ok = c.get("/admin/v1/reconcile").json()["ok"]
    expect(page.get_by_test_id("reconcile-ok" if ok else "reconcile-failed")).to_be_visible()


def test_the_operator_views_the_customers_portal_read_only(page: Page, server: LiveServer) -> None:
    account = support.create_account(server, name="Viewed Co")
    support.grant(server, account, 4200)
    signed_in(page)
    page.goto(f"/console/accounts/{account}")
    page.get_by_role("button", name="View the portal (read-only)").click()
    expect(page).to_have_url(server.base_url + "/portal")
    expect(page.locator("header")).to_contain_text("Viewed Co")
    expect(page.locator("header")).to_contain_text("read-only")
    expect(page.get_by_test_id("available")).to_have_text("$42.00")
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Usage")
    page.goto("/console")  # the console session is still there
    expect(page.get_by_role("heading", level=1)).to_have_text("Accounts")
