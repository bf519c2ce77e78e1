"""Helpers for the auto top-up, refund and statement tests: a live server with a manual clock,
the job runner driven from the test with the same clock, concurrent usage, and looks behind
the API (outgoing events, sandbox charges)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from creditgate import jobs
from creditgate.clock import Clock, ManualClock
from creditgate.db import Database
from creditgate.payments.gateway import CardProcessor
from creditgate.payments.sandbox import SandboxProcessor
from tests import support
from tests.cloudflare_support import NOW, billing

ProcessorFactory = Callable[[Database, Clock], CardProcessor]


@dataclass
class World:
    """A live server and the clock it shares with the jobs this test runs."""

    server: support.LiveServer
    clock: ManualClock
    processor: ProcessorFactory

    @property
    def url(self) -> str:
        return self.server.settings.database_url

    def run_jobs(self, *names: str, processor: ProcessorFactory | None = None) -> dict[str, int]:
        """One pass of the named jobs (default auto_topups), as a worker would run it."""
        return asyncio.run(self._run(list(names or ("auto_topups",)), processor or self.processor))

    async def _run(self, names: list[str], factory: ProcessorFactory) -> dict[str, int]:
        db = Database(self.url, pool_size=4)
        proc = factory(db, self.clock)
        try:
            ctx = support.job_context(db, self.clock, proc, settings=self.server.settings)
            return await jobs.run_once(ctx, names)
        finally:
            close = getattr(proc, "aclose", None)
            if close is not None:
                await close()
            await db.dispose()

    def advance(self, **delta: float) -> None:
        self.clock.advance(**delta)


def sandbox(db: Database, clock: Clock) -> CardProcessor:
    return SandboxProcessor(db, clock)


@contextmanager
def world(
    database_url: str, data_dir: Path, processor: ProcessorFactory = sandbox, **settings: Any
) -> Iterator[World]:
    clock = ManualClock(NOW)
    config = support.make_settings(database_url, data_dir).replace(**settings)
    with support.live_server(config, clock=clock) as live:
        yield World(live, clock, processor)


def account_with_card(w: World, card: str = "4242424242424242", **extra: Any) -> tuple[str, str]:
    """A new account with a saved default card and a write token."""
    account = support.create_account(w.server, **extra)
    save_card(w, account, card)
    return account, support.create_token(w.server, account, "write")


def save_card(w: World, account: str, card: str) -> dict[str, Any]:
    with w.server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/cards", json={"card": card})
        assert r.status_code == 201, r.text
        return dict(r.json())


def configure(w: World, account: str, token: str, *, amount: int = 1000, threshold: int = 500) -> None:
    """Auto top-up through the official Cloudflare SDK."""
    billing(w.server, token).topup.config.create(account_id=account, amount=amount, threshold=threshold)


def spend(w: World, account: str, cents_each: int, count: int, *, workers: int = 16) -> None:
    """`count` usage reports of `cents_each` cents, sent concurrently, one event per request."""
    token = support.create_token(w.server, account, "gateway")
    cost = f"{cents_each / 100:.2f}"
    tag = uuid.uuid4().hex[:8]

    def one(i: int) -> int:
        event = {
            "id": f"{tag}-{i}",
            "account_id": account,
            "model": "gpt-4o",
            "provider": "openai",
            "input_tokens": 10,
            "output_tokens": 5,
            "cost_usd": cost,
        }
        with w.server.client(token) as c:
            r = c.post("/v1/gateway/usage", json={"events": [event]})
            assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
            return r.status_code

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        assert all(s == 200 for s in pool.map(one, range(count)))


def balance_cents(w: World, account: str) -> float:
    return float(support.balance_units(w.server, account)) / 10**7


def events(w: World, account: str, event_type: str) -> list[dict[str, Any]]:
    with w.server.admin() as c:
        r = c.get(
            "/admin/v1/webhook-events", params={"account_id": account, "type": event_type, "limit": 1000}
        )
        assert r.status_code == 200, r.text
        return list(r.json()["events"])


def state(w: World, account: str) -> dict[str, Any]:
    with w.server.admin() as c:
        r = c.get(f"/admin/v1/accounts/{account}/auto-topup")
        assert r.status_code == 200, r.text
        return dict(r.json())


def topups_of(w: World, account: str) -> list[dict[str, Any]]:
    with w.server.admin() as c:
        r = c.get(f"/admin/v1/accounts/{account}/topups", params={"limit": 500})
        assert r.status_code == 200, r.text
        return list(r.json()["topups"])
