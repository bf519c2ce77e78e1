"""Helpers for the enforcement tests: limits and direct database checks on either backend."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from creditgate.clock import system_clock
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.limits import config as limit_config
from creditgate.limits import service as limits
from creditgate.money import cents
from tests.support import ADMIN_TOKEN, LiveServer, free_port, make_settings

T = TypeVar("T")


def with_db(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(url, pool_size=2)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def set_limit(
    server: LiveServer,
    account_id: str,
    amount_cents: int,
    duration: str = "daily",
    strategy: str = "fixed",
    now: datetime | None = None,
) -> None:
    """Set the account's spending limit through the Cloudflare spending-limit storage."""

    async def work(db: Database) -> None:
        async with db.write() as conn:
            await limit_config.set_limit(
                conn,
                account_id,
                amount=cents(amount_cents),
                duration=duration,
                strategy=strategy,
                now=now or system_clock(),
            )

    with_db(server.settings.database_url, work)


def account_state(server: LiveServer, account_id: str) -> dict[str, int]:
    """balance, held, open holds and overruns, straight from the database."""

    async def work(db: Database) -> dict[str, int]:
        async with db.read() as conn:
            row = await ledger.get_account(conn, account_id)
            open_sum, overruns = await limits.hold_totals(conn, account_id)
        return {"balance": int(row.balance), "held": int(row.held), "open": open_sum, "overruns": overruns}

    return with_db(server.settings.database_url, work)


def authorize(
    client: httpx.Client, account_id: str, request_id: str, estimate: str = "0.01", **extra: Any
) -> dict[str, Any]:
    body = {"account_id": account_id, "request_id": request_id, "model": "gpt-4o", **extra}
    if estimate is not None:
        body["estimated_cost_usd"] = estimate
    r = client.post("/v1/gateway/authorize", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def settle(client: httpx.Client, hold_id: str, cost: str = "0.01", **extra: Any) -> dict[str, Any]:
    r = client.post(f"/v1/gateway/holds/{hold_id}/settle", json={"cost_usd": cost, **extra})
    assert r.status_code == 200, r.text
    return dict(r.json())


@contextmanager
def uvicorn_workers(database_url: str, data_dir: Path, workers: int = 2) -> Iterator[LiveServer]:
    """A real `uvicorn --workers N` server in its own process group, on 127.0.0.1."""
    port = free_port()
    env = {
        **os.environ,
        "CREDITGATE_DATABASE_URL": database_url,
        "CREDITGATE_DATA_DIR": str(data_dir),
        "CREDITGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "CREDITGATE_RUN_JOBS": "false",
        "CREDITGATE_DB_POOL_SIZE": "8",
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "creditgate.server:make_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("uvicorn workers did not start")
            time.sleep(0.1)
        settings = make_settings(database_url, data_dir)
        yield LiveServer(settings=settings, base_url=base)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _fire(args: tuple[str, list[dict[str, Any]], int]) -> list[dict[str, Any]]:
    """In a child process: send every body to authorize from `threads` threads at once, each
    thread with its own HTTP connection; returns the answers in order."""
    base, bodies, threads = args
    barrier = threading.Barrier(threads)
    local = threading.local()

    def send(body: dict[str, Any]) -> dict[str, Any]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120
            )
            barrier.wait()
        r = local.client.post("/v1/gateway/authorize", json=body)
        assert r.status_code in (200, 404), r.text
        return {**r.json(), "request_id": body["request_id"], "status": r.status_code}

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(send, bodies))


def authorize_from_processes(
    server: LiveServer, bodies: list[dict[str, Any]], processes: int = 4, threads: int = 16
) -> list[dict[str, Any]]:
    """Fire authorize calls from several processes with several connections each."""
    chunks = [bodies[i::processes] for i in range(processes)]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        parts = pool.map(_fire, [(server.base_url, chunk, min(threads, len(chunk))) for chunk in chunks])
        return [answer for part in parts for answer in part]
