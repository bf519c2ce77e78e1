"""The way into the billing portal over plain HTTP: one-time links, token sign-in, the
session cookie, the security headers and CSRF (the browser tests cover the pages)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from tests import support
from tests.cloudflare_support import clocked_server
from tests.portal_support import csrf, link_path, portal_client, portal_link, token_client
from tests.support import LiveServer


def test_a_portal_link_opens_the_account_once(server: LiveServer) -> None:
    account = support.create_account(server, name="Link Co")
    link = portal_link(server, account)
    assert link["url"].startswith(server.settings.base_url + "/portal/session/cgpl_")
    assert datetime.fromisoformat(link["expires_at"]) > datetime.now(
        datetime.fromisoformat(link["expires_at"]).tzinfo
    )
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        r = browser.get(link_path(link))
        assert r.status_code == 303 and r.headers["location"] == "/portal"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("cg_portal=cgps_")
        for attribute in ("HttpOnly", "Path=/portal", "SameSite=lax", "Max-Age=28800"):
            assert attribute.lower() in cookie.lower(), cookie
        assert "secure" not in cookie.lower()  # plain http on loopback
        page = browser.get("/portal")
        assert page.status_code == 200
        assert "Link Co" in page.text and "Available credit" in page.text
    with httpx.Client(base_url=server.base_url, timeout=30) as other:
        again = other.get(link_path(link))
        assert again.status_code == 410
        assert "already been used" in again.text and "text/html" in again.headers["content-type"]
        assert "cg_portal" not in again.headers.get("set-cookie", "")
        assert other.get("/portal").status_code == 303  # no session: to the sign-in page


def test_links_and_sessions_expire(backend: str, database_url: str, tmp_path: Path) -> None:
    with clocked_server(database_url, tmp_path, portal_link_minutes=5, portal_session_hours=2) as (
        live,
        clock,
    ):
        account = support.create_account(live)
        stale = portal_link(live, account)
        clock.advance(minutes=6)
        with httpx.Client(base_url=live.base_url, timeout=30) as browser:
            r = browser.get(link_path(stale))
            assert r.status_code == 410 and "has expired" in r.text
        fresh = portal_link(live, account)
        with httpx.Client(base_url=live.base_url, timeout=30) as browser:
            assert browser.get(link_path(fresh)).status_code == 303
            assert browser.get("/portal").status_code == 200
            clock.advance(hours=2, seconds=1)
            r = browser.get("/portal")
            assert r.status_code == 303 and r.headers["location"] == "/portal/sign-in"


def test_an_unknown_link_is_a_clear_page(server: LiveServer) -> None:
    with server.client(None) as c:
        r = c.get("/portal/session/cgpl_nope")
    assert r.status_code == 410 and "not valid" in r.text and "Traceback" not in r.text


def test_the_link_is_operator_only_and_needs_the_account(server: LiveServer) -> None:
    account = support.create_account(server)
    with server.client(support.create_token(server, account, "write")) as c:
        assert c.post(f"/admin/v1/accounts/{account}/portal-sessions").status_code == 403
    with server.admin() as c:
        r = c.post("/admin/v1/accounts/no-such-account/portal-sessions")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


def test_every_page_carries_the_security_headers(server: LiveServer) -> None:
    account = support.create_account(server)
    with portal_client(server, account) as browser:
        for path in ("/portal", "/portal/sign-in", "/portal/nowhere", "/web/static/app.css"):
            r = browser.get(path)
            csp = r.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp and "stripe" not in csp
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "same-origin"
        assert browser.get("/portal/nowhere").status_code == 404


def test_paths_that_only_share_letters_with_a_page_prefix_stay_json(server: LiveServer) -> None:
    """`/web` is the pages' static prefix; `/webhooks/...` (and `/portals`, `/consoles`) are the
    API's: their errors stay JSON and carry none of the pages' headers."""
    with server.client(None) as c:
        for path in ("/webhooks/nowhere", "/portals", "/consoles/x", "/webx"):
            r = c.get(path)
            assert r.status_code == 404 and r.json()["error"]["type"] == "no_route", (path, r.text)
            assert "content-security-policy" not in r.headers, path
        page = c.get("/web/nowhere")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "content-security-policy" in page.headers


def test_a_form_without_its_csrf_token_is_refused(server: LiveServer) -> None:
    account = support.create_account(server)
    with portal_client(server, account) as browser:
        assert browser.post("/portal/sign-out", data={}).status_code == 403
        wrong = browser.post("/portal/sign-out", data={"csrf_token": "0" * 64})
        assert wrong.status_code == 403 and "security token" in wrong.text
        assert browser.get("/portal").status_code == 200  # still signed in
        token = csrf(browser.get("/portal").text)
        r = browser.post("/portal/sign-out", data={"csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/portal/sign-in"
        assert browser.get("/portal").status_code == 303
    # another browser's token (bound to another session) does not work either
    with portal_client(server, account) as first, portal_client(server, account) as second:
        stolen = csrf(first.get("/portal").text)
        assert second.post("/portal/sign-out", data={"csrf_token": stolen}).status_code == 403


def test_account_tokens_sign_in_and_others_do_not(server: LiveServer) -> None:
    account = support.create_account(server, name="Tokens Ltd")
    for scope in ("read", "write"):
        with token_client(server, support.create_token(server, account, scope)) as browser:
            page = browser.get("/portal")
            assert page.status_code == 200 and "Tokens Ltd" in page.text
            assert ("read-only" in page.text) == (scope == "read")
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        form = csrf(browser.get("/portal/sign-in").text)
        for token, message in (
            (support.create_token(server, account, "gateway"), "gateway token cannot sign in"),
            (support.ADMIN_TOKEN, "the operator uses the console"),
            ("cgt_not-a-token", "not valid"),
        ):
            r = browser.post("/portal/sign-in", data={"token": token, "csrf_token": form})
            assert r.status_code in (401, 403) and message in r.text, r.text
            assert "cg_portal" not in r.headers.get("set-cookie", "")
        assert browser.post("/portal/sign-in", data={"token": "x"}).status_code == 403  # no CSRF token


def test_the_operator_signs_in_to_the_console(server: LiveServer) -> None:
    with token_client(server, support.ADMIN_TOKEN, area="console") as browser:
        assert browser.cookies.get("cg_console", path="/console")
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        account = support.create_account(server)
        form = csrf(browser.get("/console/sign-in").text)
        token = support.create_token(server, account, "write")
        r = browser.post("/console/sign-in", data={"token": token, "csrf_token": form})
        assert r.status_code == 403 and "operator token" in r.text


def test_the_cli_prints_a_link(database_url: str, tmp_path: Path, server: LiveServer) -> None:
    account = support.create_account(server)
    proc = support.cli(database_url, "portal", "link", account, data_dir=tmp_path)
    link = json.loads(proc.stdout)
    assert "/portal/session/cgpl_" in link["url"]
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(minutes=9) < expires - datetime.now(expires.tzinfo) <= timedelta(minutes=10)
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        assert browser.get(link_path(link)).status_code == 303


def test_a_link_can_carry_the_operators_return_url(server: LiveServer) -> None:
    account = support.create_account(server)
    with server.admin() as c:
        for wrong in ("javascript:alert(1)", "http://[", "https://", "x" * 501, 7):
            bad = c.post(f"/admin/v1/accounts/{account}/portal-sessions", json={"return_url": wrong})
            assert bad.status_code == 400 and bad.json()["error"]["field"] == "return_url", wrong
        r = c.post(
            f"/admin/v1/accounts/{account}/portal-sessions",
            json={"return_url": "https://example.com/app?x=1&y=2"},
        )
        assert r.status_code == 201, r.text
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        assert browser.get(link_path(r.json())).status_code == 303
        page = browser.get("/portal").text
        assert 'href="https://example.com/app?x=1&amp;y=2"' in page
