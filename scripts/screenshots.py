"""Screenshots of the billing portal for the README: a real `creditgate serve` on a throwaway
SQLite database (sandbox payments), seeded through the admin and gateway APIs and the portal
itself, photographed by headless chromium at desktop (1280 px) and phone (390 px) width.

    .venv/bin/python scripts/screenshots.py   # writes docs/screenshots/portal-*.png
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CREDITGATE_TEST_CHROMIUM", "/usr/bin/chromium")
ADMIN = "screenshots-admin-token"
ACCOUNT = "acme-robotics"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
PAGES = {
    "balance": "/portal",
    "top-up": "/portal/top-up",
    "auto-top-up": "/portal/auto-top-up",
    "spending-limit": "/portal/spending-limit",
    "invoices": "/portal/invoices",
    "payment-methods": "/portal/payment-methods",
    "billing-info": "/portal/billing-info",
}
PHONE_PAGES = ("balance", "top-up", "spending-limit", "invoices")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CREDITGATE_DATA_DIR": str(data_dir),
        "CREDITGATE_ADMIN_TOKEN": ADMIN,
        "CREDITGATE_PORT": str(port),
        "CREDITGATE_SELLER_NAME": "Example AI Gateway Inc.",
        "CREDITGATE_LOG_LEVEL": "warning",
    }
    exe = Path(sys.executable).with_name("creditgate")
    server = subprocess.Popen([str(exe), "serve"], env=env)  # noqa: S603 - our own console script
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("creditgate serve did not start")


def seed(api: httpx.Client) -> None:
    """An account with a grant, saved cards, usage, limits and billing info."""

    def ok(r: httpx.Response) -> None:
        assert r.is_success, r.text

    ok(api.post("/admin/v1/accounts", json={"id": ACCOUNT, "name": "Acme Robotics"}))
    base = f"/admin/v1/accounts/{ACCOUNT}"
    ok(
        api.post(
            base + "/grants",
            json={"amount_cents": 2000, "reason": "Welcome credit", "expires_at": "2999-03-31T00:00:00Z"},
        )
    )
    ok(api.post(base + "/cards", json={"card": "5555555555554444"}))
    ok(api.post(base + "/cards", json={"card": "4242424242424242"}))
    ok(
        api.put(
            base + "/billing-info",
            json={
                "name": "Acme Robotics GmbH",
                "email": "billing@acme.example",
                "address": {
                    "line1": "Hauptstraße 5",
                    "city": "Berlin",
                    "postal_code": "10115",
                    "country": "DE",
                },
                "tax_id_type": "eu_vat",
                "tax_number": "DE123456789",
            },
        )
    )
    token = api.post(base + "/tokens", json={"scope": "write"}).json()["token"]
    cf = f"/client/v4/accounts/{ACCOUNT}/ai-gateway/billing"
    headers = {"Authorization": f"Bearer {token}"}
    for cents in (5000, 2500):
        ok(api.post(cf + "/topup", json={"amount": cents}, headers=headers))
    ok(api.post(cf + "/topup/config", json={"amount": 2500, "threshold": 1000}, headers=headers))
    ok(
        api.post(
            cf + "/spending-limit",
            json={"amount": 5000, "duration": "weekly", "strategy": "fixed"},
            headers=headers,
        )
    )
    gateway = api.post(base + "/tokens", json={"scope": "gateway"}).json()["token"]
    events = [
        {
            "account_id": ACCOUNT,
            "id": f"shot-{i}",
            "provider": provider,
            "model": model,
            "input_tokens": 1200 * (i + 1),
            "output_tokens": 300 * (i + 1),
        }
        for i, (provider, model) in enumerate(
            [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4"), ("openai", "gpt-4o-mini")] * 3
        )
    ]
    ok(api.post("/v1/gateway/usage", json={"events": events}, headers={"Authorization": f"Bearer {gateway}"}))


def shoot(page: Page, base: str, width: str, names: tuple[str, ...]) -> None:
    for name in names:
        page.goto(base + PAGES[name])
        page.wait_for_load_state("networkidle")
        target = OUT / f"portal-{name}-{width}.png"
        page.screenshot(path=str(target), full_page=True)
        print(target.relative_to(ROOT))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="creditgate-shots-") as data:
        server = serve(Path(data), port)
        try:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as api:
                seed(api)
                links = [
                    api.post(f"/admin/v1/accounts/{ACCOUNT}/portal-sessions").json()["url"] for _ in range(2)
                ]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                for link, viewport, width, names in (
                    (links[0], DESKTOP, "desktop", tuple(PAGES)),
                    (links[1], PHONE, "phone", PHONE_PAGES),
                ):
                    context = browser.new_context(viewport=viewport, timezone_id="UTC", locale="en-US")
                    page = context.new_page()
                    page.goto(link)
                    shoot(page, base, width, names)
                    context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
