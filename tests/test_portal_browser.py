"""The billing portal in a real browser (headless chromium through Playwright), on SQLite and
PostgreSQL: the flows a customer goes through, and the attacks a portal must shrug off."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests import support
from tests.portal_support import link_path, portal_link
from tests.support import LiveServer


def open_portal(page: Page, server: LiveServer, account_id: str) -> None:
    page.goto(link_path(portal_link(server, account_id)))
    expect(page).to_have_url(server.base_url + "/portal")


def test_open_a_portal_link_and_see_the_balance(page: Page, server: LiveServer) -> None:
    account = support.create_account(server, name="Balance Co")
    support.grant(server, account, 1234)
    open_portal(page, server, account)
    expect(page.get_by_role("heading", level=1)).to_have_text("Balance")
    expect(page.get_by_test_id("available")).to_have_text("$12.34")
    expect(page.get_by_test_id("held")).to_have_text("$0.00")
    expect(page.locator("header")).to_contain_text("Balance Co")


def test_an_account_name_with_markup_renders_as_text(page: Page, server: LiveServer) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    account = support.create_account(server, name="<script>alert(1)</script>")
    open_portal(page, server, account)
    expect(page.locator("header")).to_contain_text("<script>alert(1)</script>")
    assert page.locator("script:not([src])").count() == 0
    assert dialogs == []
