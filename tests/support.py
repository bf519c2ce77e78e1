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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from creditgate.billing.inbox import Handlers
from creditgate.clock import Clock, system_clock
from creditgate.config import Settings, normalize_database_url
from creditgate.db import Database
from creditgate.payments.gateway import CardProcessor
from creditgate.server import build_app
from creditgate.workflows.context import Context
from creditgate.workflows.database import prepare_database

PG_ADMIN_URL = os.environ.get("CREDITGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_TOKEN = "cg-test-operator-token"


def new_account_id() -> str:
    """A Cloudflare-style 32-hex account id."""
    return uuid.uuid4().hex


def pg_available() -> bool:
    """Whether the PostgreSQL server named by CREDITGATE_TEST_PG accepts connections."""
    from urllib.parse import urlsplit

    parts = urlsplit(PG_ADMIN_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=1):
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


def pg_or_skip() -> None:
    """Skip (loudly) when PostgreSQL is unreachable; fail instead under CI=true."""
    import sys

    import pytest

    if pg_available():
        return
    message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: PostgreSQL half of the suite SKIPPED"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true makes this an error)", pytrace=False)
    sys.stderr.write(f"\n\n*** {message} ***\n\n")
    pytest.skip(message)


def create_pg_database(template: str | None = None) -> str:
    """Create a fresh test database (a copy of the test database at the URL `template`, which
    nothing may be connected to); returns its plain URL. Drop it with drop_pg_database."""
    name = f"creditgate_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    copy = "" if template is None else f' TEMPLATE "{template.rsplit("/", 1)[1]}"'
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"{copy}'))
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
        # the suite reads ledger, rollups and spend right after a usage answer: apply inline
        # (tests/test_usage_applier.py covers the deferred applier)
        usage_apply="inline",
    )
    return base.replace(**overrides)


def job_context(
    db: Database,
    clock: Clock = system_clock,
    processor: CardProcessor | None = None,
    *,
    webhook_handlers: Handlers | None = None,
    settings: Settings | None = None,
) -> Context:
    """The Context a worker would give the jobs, on this database and clock (and with these
    settings, e.g. a live server's seller; default: make_settings')."""
    settings = settings or make_settings(db.url, Path("."))
    ctx = Context(settings=settings, db=db, clock=clock, processor=processor)
    if webhook_handlers is not None:
        ctx.webhook_handlers = webhook_handlers
    return ctx


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
def live_server(
    settings: Settings, clock: Clock = system_clock, *, webhook_handlers: Handlers | None = None
) -> Iterator[LiveServer]:
    """Run the app under uvicorn in a background thread until the block exits. With
    `webhook_handlers`, the inbox dispatches processor events to those instead of billing's."""
    port = free_port()
    settings = settings.replace(host="127.0.0.1", port=port)
    app = build_app(settings, clock=clock)  # the composition root's app: the API and the portal
    if webhook_handlers is not None:
        app.state.services.webhook_handlers = webhook_handlers
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


def cli(database_url: str, *args: str, data_dir: Path | None = None, check: bool = True) -> Any:
    """Run the `creditgate` console script in a subprocess against `database_url`."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("creditgate")
    env = {**os.environ, "CREDITGATE_DATABASE_URL": database_url}
    if data_dir is not None:
        env["CREDITGATE_DATA_DIR"] = str(data_dir)
    proc = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"creditgate {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def query(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run one SQL statement in its own transaction and return the rows (tests only)."""
    from sqlalchemy import text

    async def main() -> list[tuple[Any, ...]]:
        db = Database(normalize_database_url(database_url), pool_size=1)
        try:
            async with db.write() as conn:
                result = await conn.execute(text(sql), params)
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            await db.dispose()

    return asyncio.run(main())


TABLES = (
    "accounts",
    "ledger_entries",
    "tokens",
    "idempotency_keys",
    "prices",
    "usage_events",
    "usage_rollups",
)


def snapshot(database_url: str) -> dict[str, Any]:
    """Row counts of the core tables plus the sum of balances and rollup totals: equal
    snapshots before and after a rejected request prove it wrote nothing."""
    parts = [f"(SELECT count(*) FROM {t})" for t in TABLES]
    parts += [
        "(SELECT coalesce(sum(balance), 0) FROM accounts)",
        "(SELECT coalesce(sum(cost), 0) FROM usage_rollups)",
    ]
    row = query(database_url, "SELECT " + ", ".join(parts))[0]
    return dict(zip([*TABLES, "balances", "rollup_cost"], (int(v) for v in row), strict=True))
