"""Helpers for the billing portal tests: portal links, and httpx clients holding a session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests import support

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def portal_link(server: support.LiveServer, account_id: str) -> dict[str, Any]:
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account_id}/portal-sessions")
        assert r.status_code == 201, r.text
        return dict(r.json())


def link_path(link: dict[str, Any]) -> str:
    """The link's path on this server (its host is the server's public URL)."""
    return "/" + str(link["url"]).split("/", 3)[3]


@contextmanager
def portal_client(server: support.LiveServer, account_id: str) -> Iterator[httpx.Client]:
    """A browser-like client (cookies kept) signed in to the account's portal by a link."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        r = client.get(link_path(portal_link(server, account_id)))
        assert r.status_code == 303 and r.headers["location"] == "/portal", r.text
        yield client


@contextmanager
def token_client(server: support.LiveServer, token: str, area: str = "portal") -> Iterator[httpx.Client]:
    """A client signed in through the sign-in form with an account (or the operator) token."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        page = client.get(f"/{area}/sign-in")
        r = client.post(f"/{area}/sign-in", data={"token": token, "csrf_token": csrf(page.text)})
        assert r.status_code == 303, r.text
        yield client


def csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def post_form(client: httpx.Client, page: str, action: str, fields: dict[str, str]) -> httpx.Response:
    """Load `page`, then post `fields` to `action` with that page's CSRF token."""
    token = csrf(client.get(page).text)
    return client.post(action, data={**fields, "csrf_token": token})
