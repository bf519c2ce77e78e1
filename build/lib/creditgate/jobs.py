"""Periodic, idempotent background work. `creditgate serve` runs it in-process; `creditgate
worker` runs it alone. Each job is an async function of (db, clock) that does one bounded
pass and returns how many items it handled; a job must be safe with two runners at once.
Jobs that charge cards get the card processor from `processor_for(db, clock)`: the one the
runner was given (`run_once(..., processor=)`), else the one the settings name."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime, timedelta

from creditgate.billing import autotopup, handlers, inbox, statements, topups
from creditgate.billing.topups import Topup
from creditgate.clock import Clock
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.limits import service as limits
from creditgate.notify import delivery
from creditgate.observability import metrics
from creditgate.payments.factory import make_processor
from creditgate.payments.gateway import CardProcessor, ChargeResult

log = logging.getLogger("creditgate.jobs")

Job = Callable[[Database, Clock], Awaitable[int]]

JOBS: dict[str, Job] = {}
RETRY_UNANSWERED = timedelta(minutes=1)
_PROCESSOR: ContextVar[CardProcessor | None] = ContextVar("creditgate_job_processor", default=None)
assert handlers  # imported so a worker without the app still dispatches webhook events


def job(name: str) -> Callable[[Job], Job]:
    """Register a periodic job under `name`."""

    def register(fn: Job) -> Job:
        JOBS[name] = fn
        return fn

    return register


def processor_for(db: Database, clock: Clock) -> CardProcessor:
    """The card processor of this pass."""
    return _PROCESSOR.get() or make_processor(Settings.from_env(), db, clock)


async def run_once(
    db: Database, clock: Clock, names: list[str] | None = None, *, processor: CardProcessor | None = None
) -> dict[str, int]:
    """One pass of every (or the named) job; a failing job is logged and does not stop the rest."""
    token = _PROCESSOR.set(processor) if processor is not None else None
    try:
        return await _run_once(db, clock, names)
    finally:
        if token is not None:
            _PROCESSOR.reset(token)


async def _run_once(db: Database, clock: Clock, names: list[str] | None) -> dict[str, int]:
    done: dict[str, int] = {}
    for name, fn in JOBS.items():
        if names is not None and name not in names:
            continue
        try:
            with metrics.job_run(name):
                done[name] = await fn(db, clock)
            if done[name]:
                log.info("job %s handled %d item(s)", name, done[name])
        except Exception:
            log.exception("job %s failed; it will run again next pass", name)
            done[name] = -1
    return done


async def run_forever(
    db: Database, clock: Clock, interval: float = 5.0, *, processor: CardProcessor | None = None
) -> None:
    """Run passes every `interval` seconds until cancelled."""
    while True:
        await run_once(db, clock, processor=processor)
        await asyncio.sleep(interval)


@job("expire_holds")
async def expire_holds(db: Database, clock: Clock) -> int:
    """Release holds past their TTL, in batches (two runners never take the same hold)."""
    total = 0
    for _ in range(100):  # bounded: at most 50,000 holds per pass
        async with db.write() as conn:
            done = await limits.expire(conn, clock(), batch=500)
        total += done
        if done < 500:
            break
    return total


@job("prune_spend_buckets")
async def prune_spend_buckets(db: Database, clock: Clock) -> int:
    """Drop per-minute spend older than any spending-limit window can reach."""
    async with db.write() as conn:
        return await limits.prune_spend(conn, clock())


@job("deliver_webhooks")
async def deliver_webhooks(db: Database, clock: Clock, *, batch: int = 32, max_batches: int = 20) -> int:
    """Send due outgoing webhooks: claim a batch under a lease (committed), POST them, then
    record every attempt and schedule retries. Keeps going while batches come back full."""
    sent = 0
    for _ in range(max_batches):
        async with db.write() as conn:
            claimed = await delivery.claim(conn, clock(), limit=batch)
        if not claimed:
            break
        results = await delivery.send_all(claimed, clock)
        async with db.write() as conn:
            for item, result in zip(claimed, results, strict=True):
                await delivery.record(conn, item, result, clock())
        sent += len(claimed)
        if len(claimed) < batch:
            break
    return sent


@job("webhook_inbox")
async def retry_webhook_inbox(db: Database, clock: Clock) -> int:
    """Dispatch again the incoming processor events whose handler failed."""
    async with db.write() as conn:
        return await inbox.retry_due(conn, clock())


@job("auto_topups")
async def auto_topups(db: Database, clock: Clock, *, batch: int = 20, max_batches: int = 10) -> int:
    """Queue auto top-ups the debit hook missed, charge the queued ones off session (after
    the commit that queued them, under a lease), and re-read those waiting for 3-D Secure."""
    proc = processor_for(db, clock)
    async with db.write() as conn:
        handled = await autotopup.sweep(conn, clock(), proc.name)
    for _ in range(max_batches):
        async with db.write() as conn:
            claimed = await autotopup.claim_charges(conn, clock(), limit=batch)
        for topup in claimed:
            await _charge(db, clock, proc, topup)
        handled += len(claimed)
        if len(claimed) < batch:
            break
    async with db.write() as conn:
        waiting = await autotopup.claim_polls(conn, clock(), limit=batch)
    for topup in waiting:
        try:
            result = await proc.payment_status(str(topup.payment_id))
        except Exception:
            log.warning("could not re-read payment %s of auto top-up %s", topup.payment_id, topup.id)
            continue
        if result.status != "requires_action":
            async with db.write() as conn:
                await topups.record_charge(conn, topup.id, result, clock())
            handled += 1
    return handled


async def _charge(db: Database, clock: Clock, proc: CardProcessor, topup: Topup) -> None:
    """One off-session charge, recorded in its own transaction. An unknown outcome (processor
    down, or killed right here) keeps the top-up queued: the next try uses the same key."""
    async with db.read() as conn:
        stale = await autotopup.first_attempt_is_stale(conn, topup.id, clock())
    if stale:
        result = ChargeResult(
            "",
            "failed",
            failure_code="outcome_unknown",
            failure_message="the first charge attempt never got an answer and is too old to retry safely; "
            "check the processor (a late payment webhook still credits it)",
        )
    else:
        try:
            result = await proc.charge(topup.charge_request(off_session=True))
        except Exception:
            metrics.AUTO_TOPUPS.labels("unanswered").inc()
            log.exception("auto top-up %s: the charge has no answer; retrying with the same key", topup.id)
            async with db.write() as conn:
                await autotopup.retry_later(conn, topup.id, clock() + RETRY_UNANSWERED)
            return
    metrics.AUTO_TOPUPS.labels(result.status).inc()
    log.info("auto top-up %s charged: %s %s", topup.id, result.status, result.failure_code or "")
    async with db.write() as conn:
        await topups.record_charge(conn, topup.id, result, clock())


# database URL -> the newest month found fully closed. Accounts created later cannot need it
# (their created_at is after its end), so the pass skips the query until a month ends.
_CLOSED_THROUGH: dict[str, datetime] = {}


@job("close_periods")
async def close_periods(db: Database, clock: Clock, *, batch: int = 50, max_batches: int = 20) -> int:
    """Close every finished calendar month into one statement per account (once each)."""
    period, _ = statements.last_closable(clock())
    if _CLOSED_THROUGH.get(db.url) == period:
        return 0
    closed = 0
    for _ in range(max_batches):
        async with db.read() as conn:
            due = await statements.accounts_to_close(conn, clock(), limit=batch)
        for account_id in due:
            try:
                async with db.write() as conn:
                    closed += await statements.close_account(conn, account_id, clock())
            except Exception:
                log.exception("could not close the statements of account %s; next pass retries", account_id)
                return closed
        if len(due) < batch:
            _CLOSED_THROUGH[db.url] = period
            break
    return closed


@job("expire_grants")
async def expire_grants(db: Database, clock: Clock) -> int:
    """Post the expiry entry (the unused remainder, possibly 0) of every grant whose
    `expires_at` has passed; one account per transaction, under its row lock. A second
    runner finds the `expiry:<id>` ref already posted and posts nothing."""
    now = clock()
    async with db.read() as conn:
        due = await ledger.grants_due_to_expire(conn, now)
    posted = 0
    for account_id, grant_ids in due.items():
        async with db.write() as conn:
            posted += await ledger.expire_grants(conn, account_id, grant_ids, now)
    return posted
