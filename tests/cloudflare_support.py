"""Helpers for the Cloudflare billing tests: the official SDK pointed at a live server."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cloudflare
import httpx
import pypdf
from sqlalchemy import text

from creditgate.clock import ManualClock, to_ms
from creditgate.config import normalize_database_url
from creditgate.db import Database
from tests import support

NOW = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)


def sdk(server: support.LiveServer, token: str | None = None, **kwargs: Any) -> cloudflare.Cloudflare:
    """The official client, talking to our server. No retries unless asked for."""
    kwargs.setdefault("max_retries", 0)
    if token is not None:
        kwargs["api_token"] = token
    return cloudflare.Cloudflare(base_url=server.base_url + "/client/v4", **kwargs)


def billing(server: support.LiveServer, token: str, **kwargs: Any) -> Any:
    return sdk(server, token, **kwargs).ai_gateway.billing


def add_card(server: support.LiveServer, account_id: str, card: str = "4242424242424242") -> dict[str, Any]:
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account_id}/cards", json={"card": card})
        assert r.status_code == 201, r.text
        return dict(r.json())


def funded_account(server: support.LiveServer, card: str = "4242424242424242") -> tuple[str, str]:
    """A new account with a saved card and a write token."""
    account = support.create_account(server)
    add_card(server, account, card)
    return account, support.create_token(server, account, "write")


def ingest(server: support.LiveServer, account_id: str, events: list[dict[str, Any]]) -> None:
    """Report usage through the gateway API with a gateway token; every event must be accepted."""
    token = support.create_token(server, account_id, "gateway")
    batch = [
        {
            "account_id": account_id,
            "model": "gpt-4o",
            "provider": "openai",
            "input_tokens": 100,
            "output_tokens": 50,
            **e,
        }
        for e in events
    ]
    with server.client(token) as c:
        r = c.post("/v1/gateway/usage", json={"events": batch})
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == len(events), r.text


def ms(moment: datetime) -> int:
    return to_ms(moment)


def pdf_text(url: str) -> str:
    r = httpx.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(r.content))
    return "\n".join(page.extract_text() for page in reader.pages)


def sql_scalar(database_url: str, sql: str, **params: Any) -> Any:
    """Run one read query against the test database (to look behind the API)."""

    async def main() -> Any:
        db = Database(normalize_database_url(database_url), pool_size=1)
        try:
            async with db.read() as conn:
                return (await conn.execute(text(sql), params)).scalar_one()
        finally:
            await db.dispose()

    return asyncio.run(main())


def sandbox_charges(database_url: str, account_id: str) -> int:
    """How many charges the sandbox processor received for this account's customer."""
    return int(
        sql_scalar(
            database_url,
            "SELECT count(*) FROM sandbox_payments p JOIN sandbox_customers c ON c.id = p.customer_id "
            "WHERE c.account_id = :a",
            a=account_id,
        )
    )


@contextmanager
def clocked_server(
    database_url: str, data_dir: Path, **overrides: Any
) -> Iterator[tuple[support.LiveServer, ManualClock]]:
    """A live server on the session database whose clock stands still at NOW until moved."""
    clock = ManualClock(NOW)
    settings = support.make_settings(database_url, data_dir).replace(**overrides)
    with support.live_server(settings, clock=clock) as live:
        yield live, clock
