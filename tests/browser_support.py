"""A real browser for the portal tests: Playwright for Python driving Debian's chromium
(`executable_path`; Playwright's own browser download cannot work here) against a live
creditgate server on loopback. Without /usr/bin/chromium the browser tests skip locally;
under CI=true they fail instead (.ci/run installs chromium)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests import support

CHROMIUM = Path(os.environ.get("CREDITGATE_TEST_CHROMIUM", "/usr/bin/chromium"))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(server: support.LiveServer) -> Iterator[Browser]:
    """One headless chromium per test module and backend. Playwright's sync API keeps an event
    loop running in this thread, where `asyncio.run` (the database helpers) then fails: so the
    browser starts after the server (whose database is prepared first) and closes with its
    module, before any other module or the next backend's database needs `asyncio.run`. Tests
    that use it read the database over HTTP only."""
    chromium_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(server: support.LiveServer, browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) with one page, at desktop width; its base URL is
    the live server's."""
    context = browser.new_context(base_url=server.base_url, viewport=DESKTOP)
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()
