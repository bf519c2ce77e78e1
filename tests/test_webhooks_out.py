"""Outgoing webhooks on SQLite and PostgreSQL: endpoints through the admin API, the outbox,
Standard Webhooks signatures (checked by an independent verifier), retries with backoff,
leases that survive a killed worker, and two workers delivering each event once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from sqlalchemy import select

from creditgate import jobs
from creditgate.accounts import service as accounts
from creditgate.clock import ManualClock
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.notify import delivery, signing
from creditgate.notify import service as notify
from creditgate.notify.models import webhook_deliveries, webhook_events
from tests import support
from tests.stripe_support import Sink, sink  # noqa: F401 - fixture

T = TypeVar("T")
T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def verify(secret: str, headers: dict[str, str], body: bytes, now: datetime, tolerance: int = 300) -> None:
    """Standard Webhooks verification written from the spec, independent of notify.signing."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    expected = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    offered = [s.split(",", 1) for s in headers["webhook-signature"].split(" ")]
    assert any(v == "v1" and hmac.compare_digest(base64.b64decode(sig), expected) for v, sig in offered)
    assert abs(now.timestamp() - int(stamp)) <= tolerance


def run(url: str, scenario: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(normalize_database_url(url), pool_size=4)
        try:
            return await scenario(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


async def _account(db: Database, now: datetime = T0) -> str:
    account_id = support.new_account_id()
    async with db.write() as conn:
        await accounts.create_account(conn, account_id, name=None, mode="prepaid", now=now)
    return account_id


async def _endpoint(db: Database, url: str, types: list[str] | None = None) -> tuple[str, str]:
    async with db.write() as conn:
        row, secret = await notify.create_endpoint(conn, url, T0, event_types=types)
    return str(row.id), secret


async def _emit(db: Database, account: str, event_type: str = "topup.succeeded", now: datetime = T0) -> str:
    async with db.write() as conn:
        return await notify.emit(conn, account, event_type, {"amount_cents": 1000, "topup_id": "t1"}, now)


async def _pass(db: Database, now: datetime) -> int:
    return (await jobs.run_once(support.job_context(db, ManualClock(now)), ["deliver_webhooks"]))[
        "deliver_webhooks"
    ]


async def _deliveries(db: Database, event_id: str) -> list[Any]:
    async with db.read() as conn:
        stmt = select(webhook_deliveries).where(webhook_deliveries.c.event_id == event_id)
        return list(await conn.execute(stmt.order_by(webhook_deliveries.c.id)))


def test_signing_matches_the_spec_test_vector() -> None:
    """The example from the Standard Webhooks reference libraries."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    fresh = signing.new_secret()
    assert fresh.startswith("whsec_") and len(signing.secret_key(fresh)) == 32
    with pytest.raises(ValueError):
        signing.secret_key("not-a-secret")


def test_endpoints_admin_api(server: support.LiveServer) -> None:
    with server.admin() as c:
        r = c.post(
            "/admin/v1/webhook-endpoints",
            json={
                "url": "https://hooks.example.com/cg",
                "description": "ops",
                "event_types": ["balance.low"],
            },
        )
        assert r.status_code == 201, r.text
        created = r.json()
        endpoint_id, secret = created["id"], created["secret"]
        try:
            assert secret.startswith("whsec_") and created["event_types"] == ["balance.low"]
            listed = c.get("/admin/v1/webhook-endpoints").json()
            mine = [e for e in listed["endpoints"] if e["id"] == endpoint_id]
            assert (
                len(mine) == 1
                and "secret" not in mine[0]
                and secret not in c.get("/admin/v1/webhook-endpoints").text
            )
            assert "topup.succeeded" in listed["event_types"]
            got = c.get(f"/admin/v1/webhook-endpoints/{endpoint_id}")
            assert got.status_code == 200 and "secret" not in got.json()
            for bad, field in [
                ({"url": "ftp://example.com/x"}, "url"),
                ({"url": "not a url"}, "url"),
                ({"url": "https://user:pw@example.com/"}, "url"),
                ({"url": "https://example.com:99999/"}, "url"),
                ({"url": 7}, "url"),
                ({"url": "https://example.com/", "event_types": ["topup.exploded"]}, "event_types"),
                ({"url": "https://example.com/", "event_types": []}, "event_types"),
                ({"url": "https://example.com/", "secret": "whsec_mine"}, "secret"),
                ({"url": "https://example.com/", "description": 5}, "description"),
            ]:
                r = c.post("/admin/v1/webhook-endpoints", json=bad)
                assert r.status_code == 400 and r.json()["error"]["field"] == field, (bad, r.text)
            assert c.get("/admin/v1/webhook-events", params={"limit": 0}).status_code == 400
            assert c.get("/admin/v1/webhook-events/msg_nope").status_code == 404
            assert c.get("/admin/v1/webhooks/inbox", params={"status": "weird"}).status_code == 400
        finally:
            assert c.delete(f"/admin/v1/webhook-endpoints/{endpoint_id}").status_code == 200
        assert c.get(f"/admin/v1/webhook-endpoints/{endpoint_id}").status_code == 404
        assert c.delete(f"/admin/v1/webhook-endpoints/{endpoint_id}").status_code == 404
    account = support.create_account(server)
    token = support.create_token(server, account, "write")
    with server.client(token) as c:
        assert c.get("/admin/v1/webhook-endpoints").status_code == 403
        assert c.post("/admin/v1/webhook-endpoints", json={"url": "https://example.com/"}).status_code == 403


def test_event_is_delivered_signed_and_every_attempt_is_visible(
    fresh_database_url: str,
    tmp_path: Path,
    sink: Sink,  # noqa: F811
) -> None:
    settings = support.make_settings(fresh_database_url, tmp_path)
    with support.live_server(settings) as live:
        account = support.create_account(live)
        with live.admin() as c:
            created = c.post("/admin/v1/webhook-endpoints", json={"url": sink.url}).json()
        sink.statuses = [500]
        now = datetime.now(UTC)

        async def scenario(db: Database) -> tuple[str, int, int]:
            event_id = await _emit(db, account, now=now)
            first = await _pass(db, now)
            second = await _pass(db, now + timedelta(seconds=5))
            return event_id, first, second

        event_id, first, second = run(fresh_database_url, scenario)
        assert (first, second) == (1, 1)
        assert len(sink.received) == 2
        for body, headers in sink.received:
            verify(created["secret"], headers, body, now, tolerance=30)
            assert headers["webhook-id"] == event_id and headers["content-type"] == "application/json"
        payload = orjson.loads(sink.received[1][0])
        assert payload["id"] == event_id and payload["type"] == "topup.succeeded"
        assert payload["account_id"] == account and payload["data"] == {
            "amount_cents": 1000,
            "topup_id": "t1",
        }
        assert sink.received[0][0] == sink.received[1][0], "a retry sends the same bytes"

        with live.admin() as c:
            detail = c.get(f"/admin/v1/webhook-events/{event_id}").json()
            (d,) = detail["deliveries"]
            assert d["status"] == "succeeded" and d["attempts"] == 2 and d["endpoint_id"] == created["id"]
            log = d["attempts_log"]
            assert [a["status_code"] for a in log] == [500, 200] and [a["attempt"] for a in log] == [1, 2]
            assert log[0]["error"] == "HTTP 500: ok" and log[1]["error"] is None
            assert all(isinstance(a["duration_ms"], int) for a in log)
            attempts = c.get(f"/admin/v1/webhook-events/{event_id}/attempts").json()["attempts"]
            assert attempts == log
            listed = c.get("/admin/v1/webhook-events", params={"account_id": account}).json()["events"]
            assert [e["id"] for e in listed] == [event_id]
            assert c.post(f"/admin/v1/webhook-events/{event_id}/redeliver").json()["requeued"] == 1

        assert run(fresh_database_url, lambda db: _pass(db, now + timedelta(seconds=6))) == 1
        assert len(sink.received) == 3


def test_retries_follow_the_schedule_then_give_up(fresh_database_url: str, sink: Sink) -> None:  # noqa: F811
    sink.statuses = [503] * 50

    async def scenario(db: Database) -> tuple[list[int], list[Any], str]:
        account = await _account(db)
        await _endpoint(db, sink.url)
        event_id = await _emit(db, account)
        handled = [await _pass(db, T0)]
        moment = T0
        for wait in delivery.RETRY_SCHEDULE:
            handled.append(await _pass(db, moment + wait - timedelta(seconds=1)))  # not yet
            moment += wait
            handled.append(await _pass(db, moment))
        handled.append(await _pass(db, moment + timedelta(days=30)))
        return handled, await _deliveries(db, event_id), event_id

    handled, (row,), event_id = run(fresh_database_url, scenario)
    assert handled == [1] + [0, 1] * len(delivery.RETRY_SCHEDULE) + [0]
    assert row.status == "failed" and row.attempts == delivery.MAX_ATTEMPTS == 8
    assert row.last_status_code == 503 and row.next_attempt_at is None
    assert len(sink.received) == 8 and {h["webhook-id"] for _, h in sink.received} == {event_id}


def test_a_killed_worker_loses_nothing(fresh_database_url: str, sink: Sink) -> None:  # noqa: F811
    async def scenario(db: Database) -> tuple[int, int, str, list[Any]]:
        account = await _account(db)
        await _endpoint(db, sink.url)
        event_id = await _emit(db, account)
        async with db.write() as conn:  # a worker claims, commits, and dies before sending
            (lost,) = await delivery.claim(conn, T0)
        hidden = await _pass(db, T0 + timedelta(seconds=30))
        hidden += await _pass(db, T0 + delivery.lease_for(1) - timedelta(seconds=1))
        recovered = await _pass(db, T0 + delivery.lease_for(1))
        # the dead worker's late result cannot undo the delivery, but is still recorded
        late = delivery.AttemptResult(T0, 5, None, "ReadTimeout")
        async with db.write() as conn:
            outcome = await delivery.record(conn, lost, late, T0 + timedelta(minutes=2))
        async with db.read() as conn:
            attempts = await notify.event_attempts(conn, event_id)
        return hidden, recovered, outcome, [await _deliveries(db, event_id), attempts]

    hidden, recovered, outcome, (rows, attempts) = run(fresh_database_url, scenario)
    assert (hidden, recovered, outcome) == (0, 1, "stale")
    (row,) = rows
    assert row.status == "succeeded" and row.attempts == 2
    assert sorted((a["attempt"], a["succeeded"]) for a in attempts) == [(1, False), (2, True)]
    assert len(sink.received) == 1


def test_two_workers_deliver_each_event_exactly_once(fresh_database_url: str, sink: Sink) -> None:  # noqa: F811
    async def scenario(db: Database) -> list[int]:
        account = await _account(db)
        await _endpoint(db, sink.url)
        for _ in range(40):
            await _emit(db, account)
        other = Database(db.url, pool_size=4)
        try:
            clock = ManualClock(T0)
            return list(
                await asyncio.gather(
                    jobs.deliver_webhooks(db, clock, batch=4), jobs.deliver_webhooks(other, clock, batch=4)
                )
            )
        finally:
            await other.dispose()

    counts = run(fresh_database_url, scenario)
    ids = [h["webhook-id"] for _, h in sink.received]
    assert sum(counts) == 40 and len(ids) == 40 and len(set(ids)) == 40


def test_filters_deletion_and_unreachable_endpoints(fresh_database_url: str, sink: Sink) -> None:  # noqa: F811
    async def scenario(db: Database) -> dict[str, Any]:
        account = await _account(db)
        everything, _ = await _endpoint(db, sink.url)
        topups_only, _ = await _endpoint(db, sink.url + "?only=topups", ["topup.succeeded"])
        dead, _ = await _endpoint(db, f"http://127.0.0.1:{support.free_port()}/gone")
        low = await _emit(db, account, "balance.low")
        async with db.write() as conn:
            await notify.delete_endpoint(conn, everything, T0)
        sent = await _pass(db, T0)
        rows = await _deliveries(db, low)
        return {
            "sent": sent,
            "rows": {r.endpoint_id: r for r in rows},
            "ids": (everything, topups_only, dead),
        }

    out = run(fresh_database_url, scenario)
    everything, topups_only, dead = out["ids"]
    assert topups_only not in out["rows"], "not subscribed to balance.low"
    assert out["rows"][everything].status == "canceled"
    unreachable = out["rows"][dead]
    assert out["sent"] == 1 and unreachable.status == "pending" and unreachable.attempts == 1
    assert unreachable.last_status_code is None and unreachable.last_error.startswith("ConnectError")
    assert unreachable.next_attempt_at == T0 + delivery.RETRY_SCHEDULE[0]
    assert sink.received == []


def test_emit_commits_or_rolls_back_with_the_change(fresh_database_url: str) -> None:
    async def scenario(db: Database) -> int:
        account = await _account(db)
        with pytest.raises(RuntimeError):
            async with db.write() as conn:
                await notify.emit(conn, account, "invoice.finalized", {"invoice_id": "inv_1"}, T0)
                raise RuntimeError("the domain change failed")
        with pytest.raises(ValueError):
            async with db.write() as conn:
                await notify.emit(conn, account, "topup.exploded", {}, T0)
        async with db.read() as conn:
            return len(list(await conn.execute(select(webhook_events.c.id))))

    assert run(fresh_database_url, scenario) == 0


def test_a_slow_receiver_times_out_within_the_lease(
    fresh_database_url: str,
    sink: Sink,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.2)
    sink.delay = 1.0

    async def scenario(db: Database) -> Any:
        account = await _account(db)
        await _endpoint(db, sink.url)
        event_id = await _emit(db, account)
        assert await _pass(db, T0) == 1
        (row,) = await _deliveries(db, event_id)
        return row

    row = run(fresh_database_url, scenario)
    assert row.status == "pending" and row.last_error == "timed out after 0.2 s"
    assert delivery.lease_for(32) == timedelta(seconds=0.2 * 4) + delivery.LEASE_MARGIN
