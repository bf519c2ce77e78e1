"""Public test helpers: databases on both engines, a live server on loopback, small clients."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from creditgate.api import create_app
from creditgate.api.app import prepare_database
from creditgate.clock import Clock, system_clock
from creditgate.config import Settings, normalize_database_url
from creditgate.db import Database

PG_ADMIN_URL = os.environ.get("CREDITGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_TOKEN = "cg-test-operator-token"


def new_account_id() -> str:
    """A Cloudflare-style 32-hex account id."""
    return uuid.uuid4().hex


def pg_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def _pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_pg_database() -> str:
    """Create a fresh test database; returns its plain URL. Drop it with drop_pg_database."""
    name = f"creditgate_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    assert name.startswith("creditgate_test_"), "only drop databases the tests created"
    asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    base = Settings(
        database_url=normalize_database_url(database_url),
        data_dir=data_dir,
        admin_token=ADMIN_TOKEN,
        db_pool_size=10,
        run_jobs=False,
    )
    return replace(base, **overrides)


def prepare(settings: Settings) -> None:
    """Migrate and seed a test database (from a throwaway event loop)."""

    async def main() -> None:
        db = Database(settings.database_url, pool_size=2)
        try:
            await prepare_database(db)
        finally:
            await db.dispose()

    asyncio.run(main())


@dataclass
class LiveServer:
    """A creditgate server running in a thread on 127.0.0.1."""

    settings: Settings
    base_url: str

    def client(self, token: str | None = ADMIN_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def admin(self) -> httpx.Client:
        return self.client(ADMIN_TOKEN)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(settings: Settings, clock: Clock = system_clock) -> Iterator[LiveServer]:
    """Run the app under uvicorn in a background thread until the block exits."""
    port = free_port()
    settings = replace(settings, host="127.0.0.1", port=port)
    app = create_app(settings, clock=clock)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("creditgate test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(settings=settings, base_url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def create_account(server: LiveServer, account_id: str | None = None, **extra: Any) -> str:
    account_id = account_id or new_account_id()
    with server.admin() as c:
        r = c.post("/admin/v1/accounts", json={"id": account_id, **extra})
        assert r.status_code == 201, r.text
    return account_id


def create_token(server: LiveServer, account_id: str, scope: str) -> str:
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account_id}/tokens", json={"scope": scope})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def grant(server: LiveServer, account_id: str, amount_cents: int) -> None:
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account_id}/grants", json={"amount_cents": amount_cents})
        assert r.status_code == 201, r.text


def balance_units(server: LiveServer, account_id: str) -> int:
    """The account's balance in ledger units (exact, from the admin API's USD string)."""
    from creditgate.money import parse_usd

    with server.admin() as c:
        r = c.get(f"/admin/v1/accounts/{account_id}")
        assert r.status_code == 200, r.text
        return parse_usd(r.json()["balance_usd"])
