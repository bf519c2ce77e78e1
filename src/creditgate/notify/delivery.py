"""Delivering the outbox: claim due deliveries under a lease, POST them signed, record each
attempt, and schedule the retry.

A claim counts the attempt and hides the delivery until the lease ends, so a worker killed
mid-send loses nothing: the lease (sized to the batch: TIMEOUT_SECONDS per wave of
CONCURRENCY sends, plus a margin) expires and another pass sends it again (at least once;
receivers deduplicate on webhook-id, which is the same on every try). A worker that outlives
its lease still records its attempt but cannot settle the delivery (the lease token moved on).
The caller (jobs.py) commits the claim before sending and records the results afterwards.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.clock import Clock
from creditgate.ids import new_id
from creditgate.notify import repository as repo
from creditgate.notify import signing
from creditgate.observability import logs, metrics

# Waits after attempt 1, 2, ... fails (Standard Webhooks / Svix schedule); then it is failed.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
TIMEOUT_SECONDS = 15.0  # the whole attempt, not per socket read
CONCURRENCY = 8
LEASE_MARGIN = timedelta(seconds=30)
USER_AGENT = "creditgate-webhooks/0.1"
MAX_ERROR = 500
log = logs.get("creditgate.webhooks")


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds the lease on."""

    delivery_id: int
    event_id: str
    endpoint_id: str
    attempt: int
    url: str
    secret: str
    body: str
    token: str
    account_id: str


@dataclass(frozen=True)
class AttemptResult:
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def lease_for(count: int) -> timedelta:
    """How long `count` claimed deliveries may take: every wave of CONCURRENCY sends is
    bounded by TIMEOUT_SECONDS, plus a margin to record the results."""
    waves = -(-count // CONCURRENCY)
    return timedelta(seconds=TIMEOUT_SECONDS * waves) + LEASE_MARGIN


async def claim(conn: AsyncConnection, now: datetime, *, limit: int = 32) -> list[Claimed]:
    """Lease up to `limit` due deliveries (pending and due, or whose lease expired)."""
    await repo.give_up_on_lost(conn, now, MAX_ATTEMPTS)
    ids = await repo.due_ids(conn, now, limit, MAX_ATTEMPTS)
    if not ids:
        return []
    token = new_id("lease")
    await repo.lease(conn, ids, token, now + lease_for(len(ids)), now)
    return [
        Claimed(r.id, r.event_id, r.endpoint_id, r.attempts, r.url, r.secret, r.body, token, r.account_id)
        for r in await repo.leased(conn, token)
    ]


async def send(client: httpx.AsyncClient, item: Claimed, clock: Clock) -> AttemptResult:
    """POST one delivery, signed for this attempt's timestamp. Never raises for the
    receiver's failures: they become the attempt's error."""
    started = clock()
    body = item.body.encode()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signing.headers(item.secret, item.event_id, int(started.timestamp()), body),
    }
    t0 = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with (
            asyncio.timeout(TIMEOUT_SECONDS),
            client.stream("POST", item.url, content=body, headers=headers) as response,
        ):
            status = response.status_code
            excerpt = b""
            async for chunk in response.aiter_bytes():
                excerpt += chunk
                if len(excerpt) >= 200:
                    break
        if not 200 <= status < 300:
            text = excerpt[:200].decode("utf-8", "replace").strip()
            error = f"HTTP {status}" + (f": {text}" if text else "")
    except TimeoutError:
        status, error = None, f"timed out after {TIMEOUT_SECONDS:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    duration_ms = int((time.monotonic() - t0) * 1000)
    return AttemptResult(started, duration_ms, status, error[:MAX_ERROR] if error else None)


async def send_all(items: list[Claimed], clock: Clock) -> list[AttemptResult]:
    """Send a claimed batch, CONCURRENCY at a time. Redirects are not followed: a delivery
    goes only to the URL the operator registered."""
    limiter = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:

        async def one(item: Claimed) -> AttemptResult:
            async with limiter:
                return await send(client, item, clock)

        return list(await asyncio.gather(*(one(item) for item in items)))


def next_attempt(attempt: int, now: datetime) -> datetime | None:
    """When to try again after failed attempt number `attempt` (1-based); None = give up."""
    if attempt >= MAX_ATTEMPTS:
        return None
    return now + RETRY_SCHEDULE[attempt - 1]


async def record(conn: AsyncConnection, item: Claimed, result: AttemptResult, now: datetime) -> str:
    """Store the attempt and settle the delivery. Returns its new status, or "stale" if the
    lease was lost meanwhile (the attempt is still recorded)."""
    await repo.insert_attempt(
        conn,
        {
            "delivery_id": item.delivery_id,
            "account_id": item.account_id,
            "event_id": item.event_id,
            "endpoint_id": item.endpoint_id,
            "attempt": item.attempt,
            "started_at": result.started_at,
            "duration_ms": result.duration_ms,
            "status_code": result.status_code,
            "succeeded": result.succeeded,
            "error": result.error,
        },
    )
    if result.succeeded:
        status, retry_at = "succeeded", None
    else:
        retry_at = next_attempt(item.attempt, now)
        status = "pending" if retry_at else "failed"
    settled = await repo.finish(
        conn,
        item.delivery_id,
        item.account_id,
        item.token,
        {
            "status": status,
            "next_attempt_at": retry_at,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "finished_at": None if status == "pending" else now,
        },
    )
    outcome = status if settled else "stale"
    label = "retrying" if outcome == "pending" else outcome
    metrics.WEBHOOK_DELIVERIES.labels(label).inc()
    if not result.succeeded:
        log.warning(
            "webhook delivery failed",
            event_id=item.event_id,
            endpoint_id=item.endpoint_id,
            attempt=item.attempt,
            status_code=result.status_code,
            error=result.error,
            next=label,
        )
    return outcome
