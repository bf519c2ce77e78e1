"""`POST /webhooks/stripe` and the inbox, on SQLite and PostgreSQL: verified events are
stored once and dispatched once; bad signatures, duplicates, unknown types and failing
handlers are harmless."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate import jobs
from creditgate.billing import inbox
from creditgate.billing.inbox_handlers import billing_handlers
from creditgate.clock import ManualClock, system_clock
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.notify import service as notify
from creditgate.notify.models import webhook_events
from creditgate.payments.gateway import ChargeRequest, ProcessorEvent
from tests import stripe_support as ls
from tests import support
from tests.stripe_support import localstripe_url  # noqa: F401 - fixture

SECRET = "whsec_inbox_tests"
# What the test server's inbox dispatches to: billing's handlers, plus those a test adds
# for the duration of a `registered` block.
HANDLERS: dict[str, list[inbox.Handler]] = {kind: list(found) for kind, found in billing_handlers().items()}


@contextmanager
def registered(event_type: str, handler: inbox.Handler) -> Iterator[None]:
    found = HANDLERS.setdefault(event_type, [])
    found.append(handler)
    try:
        yield
    finally:
        found.remove(handler)


@pytest.fixture(scope="module")
def stripe_server(
    database_url: str,
    localstripe_url: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[support.LiveServer]:
    settings = support.make_settings(
        database_url,
        tmp_path_factory.mktemp("stripe"),
        payments="stripe",
        stripe_api_key=ls.API_KEY,
        stripe_webhook_secret=SECRET,
        stripe_api_base=localstripe_url,
        stripe_max_network_retries=0,
    )
    with support.live_server(settings, webhook_handlers=HANDLERS) as live:
        yield live


class Recorder:
    """A test handler: records the events it is given, optionally failing first."""

    def __init__(self, *, fail_times: int = 0, outcome: object = None, emit_for: str | None = None) -> None:
        self.events: list[ProcessorEvent] = []
        self.fail_times = fail_times
        self.outcome = outcome
        self.emit_for = emit_for
        self.lock = threading.Lock()

    async def __call__(self, conn: AsyncConnection, event: ProcessorEvent, now: datetime) -> object:
        if self.emit_for:  # a domain write in the handler's transaction
            await notify.emit(conn, self.emit_for, "topup.succeeded", {"payment_id": event.payment_id}, now)
        with self.lock:
            self.events.append(event)
            if self.fail_times > 0:
                self.fail_times -= 1
                raise RuntimeError("handler is down")
        return self.outcome


def _post(server: support.LiveServer, body: bytes, secret: str = SECRET) -> httpx.Response:
    headers = {"Stripe-Signature": ls.stripe_signature(secret, body), "Content-Type": "application/json"}
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        return client.post("/webhooks/stripe", content=body, headers=headers)


def _inbox(server: support.LiveServer, event_id: str) -> dict[str, Any] | None:
    with server.admin() as c:
        r = c.get("/admin/v1/webhooks/inbox", params={"limit": 1000})
        assert r.status_code == 200, r.text
    return next((e for e in r.json()["events"] if e["event_id"] == event_id), None)


def _wait_until(check: Any, timeout: float = 10.0) -> None:
    """localstripe posts its webhooks about a second after the event."""
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "the webhook did not arrive"
        time.sleep(0.05)


def _payment_event(event_type: str, payment_id: str, event_id: str | None = None, **extra: Any) -> bytes:
    obj = {
        "id": payment_id,
        "object": "payment_intent",
        "amount": 1000,
        "metadata": {"topup_id": "t"},
        **extra,
    }
    return ls.event_body(event_type, obj, event_id)


def test_signed_event_from_localstripe_is_stored_and_dispatched(
    stripe_server: support.LiveServer,
    localstripe_url: str,  # noqa: F811
) -> None:
    ls.register_webhook(localstripe_url, "cg-inbox", stripe_server.base_url + "/webhooks/stripe", SECRET)
    tag = uuid.uuid4().hex
    recorder = Recorder()

    async def charge(p: Any) -> str:
        customer = await p.create_customer("acct-inbox", f"c-{tag}")
        card = await p.attach_card(customer, "pm_card_visa")
        request = ChargeRequest(
            customer, card.payment_method_id, 1200, "usd", True, f"topup-{tag}", {"topup_id": tag}
        )
        result = await p.charge(request)
        assert result.status == "succeeded"
        return str(result.payment_id)

    with registered("payment.succeeded", recorder):
        payment_id = ls.with_processor(localstripe_url, charge)
        _wait_until(lambda: any(e.payment_id == payment_id for e in recorder.events))
    mine = [e for e in recorder.events if e.payment_id == payment_id]
    assert len(mine) == 1, "dispatched exactly once"
    assert mine[0].metadata["topup_id"] == tag and mine[0].amount_cents == 1200
    stored = _inbox(stripe_server, mine[0].id)
    assert stored is not None and stored["status"] == "processed" and stored["attempts"] == 1
    assert stored["raw_type"] == "payment_intent.succeeded" and stored["payment_id"] == payment_id


def test_bad_signature_is_rejected_and_nothing_is_stored(stripe_server: support.LiveServer) -> None:
    recorder = Recorder()
    event_id = f"evt_{uuid.uuid4().hex}"
    body = _payment_event("payment_intent.succeeded", "pi_bad", event_id)
    with registered("payment.succeeded", recorder):
        wrong = _post(stripe_server, body, secret="whsec_not_ours")
        with httpx.Client(base_url=stripe_server.base_url) as client:
            unsigned = client.post("/webhooks/stripe", content=body)
            garbage = client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": "t=1,v1=zz"})
    for r in (wrong, unsigned, garbage):
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == "Stripe-Signature"
    assert recorder.events == []
    assert _inbox(stripe_server, event_id) is None


def test_duplicates_are_processed_once_even_concurrently(stripe_server: support.LiveServer) -> None:
    recorder = Recorder()
    event_id = f"evt_{uuid.uuid4().hex}"
    body = _payment_event("payment_intent.succeeded", f"pi_{uuid.uuid4().hex[:12]}", event_id)
    with registered("payment.succeeded", recorder):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _post(stripe_server, body), range(8)))
        late = _post(stripe_server, body)
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["duplicate"] * 7 + ["processed"]
    assert late.json()["status"] == "duplicate"
    assert [e.id for e in recorder.events] == [event_id]


def test_out_of_order_events_each_dispatch_once(stripe_server: support.LiveServer) -> None:
    recorder = Recorder()
    payment_id = f"pi_{uuid.uuid4().hex[:12]}"
    succeeded = _payment_event("payment_intent.succeeded", payment_id)
    failed = _payment_event(
        "payment_intent.payment_failed",
        payment_id,
        last_payment_error={"code": "card_declined", "message": "no"},
    )
    with registered("payment.succeeded", recorder), registered("payment.failed", recorder):
        # the later event first, then the earlier one, then the later one again
        for body in (succeeded, failed, succeeded):
            assert _post(stripe_server, body).status_code == 200
    assert [e.type for e in recorder.events] == ["payment.succeeded", "payment.failed"]
    assert recorder.events[1].failure_code == "card_declined"


def test_unknown_types_and_objects_are_stored_and_ignored(stripe_server: support.LiveServer) -> None:
    event_id = f"evt_{uuid.uuid4().hex}"
    r = _post(
        stripe_server, ls.event_body("customer.created", {"id": "cus_1", "object": "customer"}, event_id)
    )
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    stored = _inbox(stripe_server, event_id)
    assert stored is not None and stored["status"] == "ignored" and stored["type"] == "other"

    not_ours = Recorder(outcome=inbox.IGNORED)  # a handler that does not know the payment
    unknown_id = f"evt_{uuid.uuid4().hex}"
    with registered("payment.succeeded", not_ours):
        r = _post(stripe_server, _payment_event("payment_intent.succeeded", "pi_unknown", unknown_id))
    assert r.json()["status"] == "ignored" and len(not_ours.events) == 1
    assert (
        _post(stripe_server, _payment_event("payment_intent.succeeded", "pi_unknown", unknown_id)).json()[
            "status"
        ]
        == "duplicate"
    )


def test_failing_handler_keeps_the_event_and_undoes_its_writes(stripe_server: support.LiveServer) -> None:
    account = support.create_account(stripe_server)
    recorder = Recorder(fail_times=1, emit_for=account)
    event_id = f"evt_{uuid.uuid4().hex}"
    body = _payment_event("payment_intent.succeeded", f"pi_{uuid.uuid4().hex[:12]}", event_id)
    with registered("payment.succeeded", recorder):
        first = _post(stripe_server, body)
        assert first.status_code == 503 and first.headers["retry-after"]
        stored = _inbox(stripe_server, event_id)
        assert stored is not None and stored["status"] == "failed" and "handler is down" in stored["error"]
        assert _outbox_count(stripe_server, account) == 0  # the handler's emit was rolled back
        again = _post(stripe_server, body)  # Stripe sends it again
        assert again.status_code == 200 and again.json()["status"] == "processed"
        assert _post(stripe_server, body).json()["status"] == "duplicate"
    assert len(recorder.events) == 2
    assert _outbox_count(stripe_server, account) == 1
    stored = _inbox(stripe_server, event_id)
    assert stored is not None and stored["attempts"] == 2 and stored["error"] is None


def test_inbox_job_retries_a_failed_event_after_backoff(database_url: str) -> None:
    """The webhook_inbox job, with an injected clock, against the inbox directly."""
    recorder = Recorder(fail_times=1)
    event = ProcessorEvent(
        id=f"evt_{uuid.uuid4().hex}", type="payment.succeeded", payment_id="pi_job", metadata={}, raw_type="x"
    )
    start = system_clock()

    async def main() -> list[str]:
        db = Database(normalize_database_url(database_url), pool_size=2)
        try:
            async with db.write() as conn:
                first = await inbox.receive(conn, "stripe", event, start, HANDLERS)
            too_early = await jobs.run_once(
                support.job_context(
                    db, ManualClock(start + timedelta(seconds=59)), webhook_handlers=HANDLERS
                ),
                ["webhook_inbox"],
            )
            on_time = await jobs.run_once(
                support.job_context(db, ManualClock(start + timedelta(minutes=1)), webhook_handlers=HANDLERS),
                ["webhook_inbox"],
            )
            later = await jobs.run_once(
                support.job_context(db, ManualClock(start + timedelta(days=1)), webhook_handlers=HANDLERS),
                ["webhook_inbox"],
            )
            async with db.write() as conn:
                replay = await inbox.receive(conn, "stripe", event, start, HANDLERS)
            return [first, str(too_early), str(on_time), str(later), replay]
        finally:
            await db.dispose()

    with registered("payment.succeeded", recorder):
        first, too_early, on_time, later, replay = asyncio.run(main())
    assert first == "failed"
    assert (
        "'webhook_inbox': 0" in too_early
        and "'webhook_inbox': 1" in on_time
        and "'webhook_inbox': 0" in later
    )
    assert replay == "duplicate"
    assert [e.id for e in recorder.events] == [event.id, event.id]


def test_stripe_webhooks_are_off_without_stripe(server: support.LiveServer) -> None:
    body = _payment_event("payment_intent.succeeded", "pi_x")
    r = _post(server, body)
    assert r.status_code == 404


def _outbox_count(server: support.LiveServer, account_id: str) -> int:
    async def count() -> int:
        db = Database(server.settings.database_url, pool_size=1)
        try:
            async with db.read() as conn:
                stmt = (
                    select(func.count())
                    .select_from(webhook_events)
                    .where(webhook_events.c.account_id == account_id)
                )
                return int((await conn.execute(stmt)).scalar_one())
        finally:
            await db.dispose()

    return asyncio.run(count())
