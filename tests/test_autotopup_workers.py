"""The auto_topups job under failure, on SQLite and PostgreSQL: two workers at once charge
once; a worker killed between the charge and its record loses nothing and never charges
twice; an unanswered charge is retried under the same key; an attempt too old to retry safely
is given up and still credited by a late payment webhook."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditgate import jobs
from creditgate.billing import inbox
from creditgate.billing.inbox_handlers import billing_handlers
from creditgate.db import Database
from creditgate.money import cents
from creditgate.payments.gateway import ChargeRequest, ChargeResult, ProcessorEvent
from creditgate.payments.sandbox import SandboxProcessor
from tests import support
from tests.autotopup_support import World, account_with_card, configure, spend, state, topups_of, world
from tests.cloudflare_support import sandbox_charges


class Killed(BaseException):
    """Stands for the process dying: nothing after it runs (not even `except Exception`)."""


class Watched:
    """A processor wrapper that counts charge calls, can be slow, and can fail right after
    the real processor answered."""

    def __init__(
        self, inner: Any, calls: list[str], *, delay: float = 0.0, after: BaseException | None = None
    ):
        self._inner, self._calls, self._delay, self._after = inner, calls, delay, after
        self.name = inner.name
        self._lock = threading.Lock()

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        with self._lock:
            self._calls.append(request.idempotency_key)
        await asyncio.sleep(self._delay)
        result: ChargeResult = await self._inner.charge(request)
        if self._after is not None:
            raise self._after
        return result


@pytest.fixture
def w(fresh_database_url: str, tmp_path: Path) -> Iterator[World]:
    with world(fresh_database_url, tmp_path) as live:
        yield live


def _queued(w: World) -> tuple[str, dict[str, Any]]:
    account, token = account_with_card(w)
    support.grant(w.server, account, 600)
    configure(w, account, token)
    spend(w, account, cents_each=200, count=1)
    [topup] = topups_of(w, account)
    assert topup["status"] == "created"
    return account, topup


def test_two_workers_at_once_charge_once(w: World) -> None:
    account, topup = _queued(w)
    calls: list[str] = []

    async def two_workers() -> list[dict[str, int]]:
        dbs = [Database(w.url, pool_size=4) for _ in range(2)]
        try:
            runs = [
                jobs.run_once(
                    support.job_context(
                        db, w.clock, Watched(SandboxProcessor(db, w.clock), calls, delay=0.3)
                    ),
                    ["auto_topups"],
                )
                for db in dbs
            ]
            return list(await asyncio.gather(*runs))
        finally:
            for db in dbs:
                await db.dispose()

    results = asyncio.run(two_workers())
    assert calls == [f"topup:{topup['id']}"], results
    assert sandbox_charges(w.url, account) == 1
    assert support.balance_units(w.server, account) == cents(400 + 1000)
    assert state(w, account)["state"] == "idle"


def test_killed_between_charge_and_record_recovers_without_a_second_charge(w: World) -> None:
    account, topup = _queued(w)
    calls: list[str] = []
    with pytest.raises(Killed):
        w.run_jobs(processor=lambda db, clock: Watched(SandboxProcessor(db, clock), calls, after=Killed()))
    assert sandbox_charges(w.url, account) == 1  # the card was charged...
    assert topups_of(w, account)[0]["status"] == "created"  # ...and nothing recorded it
    assert support.balance_units(w.server, account) == cents(400)

    w.run_jobs(processor=lambda db, clock: Watched(SandboxProcessor(db, clock), calls))
    assert len(calls) == 1  # the dead worker's lease still holds
    w.advance(minutes=5)
    w.run_jobs(processor=lambda db, clock: Watched(SandboxProcessor(db, clock), calls))
    assert calls == [f"topup:{topup['id']}"] * 2  # driven again under the same key...
    assert sandbox_charges(w.url, account) == 1  # ...which the processor answers with the first charge
    [done] = topups_of(w, account)
    assert done["status"] == "completed"
    assert support.balance_units(w.server, account) == cents(1400)
    w.advance(hours=1)
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 1 and len(calls) == 2


def test_an_unanswered_charge_is_retried_under_the_same_key(w: World) -> None:
    account, topup = _queued(w)
    calls: list[str] = []
    w.run_jobs(
        processor=lambda db, clock: Watched(SandboxProcessor(db, clock), calls, after=OSError("timeout"))
    )
    assert topups_of(w, account)[0]["status"] == "created" and state(w, account)["consecutive_failures"] == 0
    w.advance(seconds=59)
    w.run_jobs(processor=lambda db, clock: Watched(SandboxProcessor(db, clock), calls))
    assert len(calls) == 1
    w.advance(seconds=1)
    w.run_jobs(processor=lambda db, clock: Watched(SandboxProcessor(db, clock), calls))
    assert calls == [f"topup:{topup['id']}"] * 2
    assert sandbox_charges(w.url, account) == 1
    assert support.balance_units(w.server, account) == cents(1400)


def test_an_attempt_too_old_to_retry_is_given_up_and_a_late_webhook_credits_it(w: World) -> None:
    account, topup = _queued(w)
    calls: list[str] = []
    with pytest.raises(Killed):
        w.run_jobs(processor=lambda db, clock: Watched(SandboxProcessor(db, clock), calls, after=Killed()))
    w.advance(hours=24)  # a processor may have forgotten the key by now
    w.run_jobs(processor=lambda db, clock: Watched(SandboxProcessor(db, clock), calls))
    assert len(calls) == 1 and sandbox_charges(w.url, account) == 1
    [given_up] = topups_of(w, account)
    assert (given_up["status"], given_up["failure_code"]) == ("failed", "outcome_unknown")

    payment_id = _sandbox_payment(w, account)
    event = ProcessorEvent(
        id=f"evt_late_{topup['id']}",
        type="payment.succeeded",
        payment_id=payment_id,
        metadata={"topup_id": topup["id"], "account_id": account},
        amount_cents=1000,
    )

    async def deliver() -> list[str]:
        db = Database(w.url, pool_size=1)
        try:
            out = []
            for _ in range(2):
                async with db.write() as conn:
                    out.append(await inbox.receive(conn, "sandbox", event, w.clock(), billing_handlers()))
            return out
        finally:
            await db.dispose()

    assert asyncio.run(deliver()) == ["processed", "duplicate"]
    [credited] = topups_of(w, account)
    assert credited["status"] == "completed"
    assert support.balance_units(w.server, account) == cents(1400)
    with w.server.admin() as c:
        assert c.get("/admin/v1/reconcile").json()["ok"] is True


def _sandbox_payment(w: World, account: str) -> str:
    from tests.cloudflare_support import sql_scalar

    return str(
        sql_scalar(
            w.url,
            "SELECT p.id FROM sandbox_payments p JOIN sandbox_customers c ON c.id = p.customer_id "
            "WHERE c.account_id = :a",
            a=account,
        )
    )
