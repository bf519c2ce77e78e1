"""Screenshots of the operator console (accounts list, one account) and the portal's usage page
at desktop (1280 px) and phone (390 px) width, into docs/screenshots/.

    .venv/bin/python -m tests.screenshots_console

A throwaway SQLite database and a live server on loopback, demo accounts and 30 days of usage
sent through the gateway API, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from creditgate.clock import to_ms
from tests import support
from tests.browser_support import CHROMIUM, DESKTOP, PHONE
from tests.portal_support import link_path, portal_link

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
ACCOUNTS = (
    ("acme-robotics", "Acme Robotics", 250_00),
    ("globex-research", "Globex Research", 1_200_00),
    ("initech-ai", "Initech AI", 40_00),
    ("umbrella-labs", "Umbrella Labs", 0),
    ("hooli-xyz", "Hooli XYZ", 5_000_00),
    ("stark-industries", "Stark Industries", 75_00),
)
MODELS = (
    ("openai", "gpt-4o", 1.0),
    ("anthropic", "claude-sonnet-4", 0.7),
    ("google", "gemini-2.0-flash", 1.6),
    ("xai", "grok-3-mini", 0.5),
)


def _events(account: str, now: datetime, rnd: random.Random) -> list[dict[str, Any]]:
    events = []
    for day in range(30):
        for provider, model, weight in MODELS:
            for n in range(int(rnd.randint(2, 6) * weight * (1 + day / 30))):
                at = now - timedelta(days=day, hours=rnd.choice((1, 3, 5, 9, 10, 11, 14, 15, 16, 20)))
                events.append(
                    {
                        "id": f"{model}-{day}-{n}",
                        "account_id": account,
                        "provider": provider,
                        "model": model,
                        "input_tokens": rnd.randint(2_000, 40_000),
                        "output_tokens": rnd.randint(200, 4_000),
                        "cached_tokens": rnd.randint(0, 1_000),
                        "timestamp": to_ms(max(at, now - timedelta(days=29, hours=23))),
                    }
                )
    return events


def seed(server: support.LiveServer) -> None:
    rnd = random.Random(2026)
    now = datetime.now(UTC) - timedelta(minutes=1)
    with server.admin() as c:
        for account, name, cents in ACCOUNTS:
            support.create_account(server, account, name=name)
            if cents:
                support.grant(server, account, cents)
            events = _events(account, now, rnd) if account in ("acme-robotics", "globex-research") else []
            for i in range(0, len(events), 500):
                r = c.post("/v1/gateway/usage", json={"events": events[i : i + 500]})
                assert r.status_code == 200 and r.json()["rejected"] == [], r.text


def shoot(page: Page, path: str, name: str) -> None:
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.goto(path)
        page.screenshot(path=str(OUT / f"{name}-{width}.png"), full_page=True)
        print(f"wrote docs/screenshots/{name}-{width}.png")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/screenshots.db"
        settings = support.make_settings(url, Path(tmp))
        support.prepare(settings)
        with support.live_server(settings) as server:
            seed(server)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
                console = browser.new_context(base_url=server.base_url, viewport=DESKTOP)
                page = console.new_page()
                page.goto("/console/sign-in")
                page.get_by_label("Token").fill(support.ADMIN_TOKEN)
                page.get_by_role("button", name="Sign in").click()
                shoot(page, "/console", "console-accounts")
                shoot(page, "/console/accounts/acme-robotics", "console-account")
                shoot(page, "/console/accounts/acme-robotics/ledger", "console-ledger")
                customer = browser.new_context(base_url=server.base_url, viewport=DESKTOP)
                visitor = customer.new_page()
                visitor.goto(link_path(portal_link(server, "acme-robotics")))
                shoot(visitor, "/portal/usage", "portal-usage")
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
