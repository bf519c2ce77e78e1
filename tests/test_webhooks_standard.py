"""Outgoing webhooks verify with the reference `standardwebhooks` library: an event
delivered by the worker to a receiver on 127.0.0.1 passes `Webhook(secret).verify`, and a
tampered body, another endpoint's secret or a replayed old timestamp do not."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from creditgate import jobs
from creditgate.accounts import service as accounts
from creditgate.clock import ManualClock
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.notify import service as notify
from creditgate.notify import signing
from tests import support
from tests.stripe_support import Sink, sink  # noqa: F401 - fixture


def test_delivered_webhook_verifies_with_the_reference_library(
    fresh_database_url: str,
    sink: Sink,  # noqa: F811
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)  # the library checks the timestamp against now
    account = support.new_account_id()
    payload = {"invoice_id": "in_1", "amount_due": 1234, "name": "Müller Ζήτα Жук 株式会社"}

    async def scenario() -> tuple[str, str, str, int]:
        db = Database(normalize_database_url(fresh_database_url), pool_size=2)
        try:
            async with db.write() as conn:
                await accounts.create_account(conn, account, name=None, mode="prepaid", now=now)
                _, secret = await notify.create_endpoint(conn, sink.url, now)
                _, other = await notify.create_endpoint(conn, sink.url + "?other", now)
                event_id = await notify.emit(conn, account, "invoice.finalized", payload, now)
            sent = (await jobs.run_once(support.job_context(db, ManualClock(now)), ["deliver_webhooks"]))[
                "deliver_webhooks"
            ]
            return secret, other, event_id, sent
        finally:
            await db.dispose()

    secret, other, event_id, sent = asyncio.run(scenario())
    assert sent == 2 and len(sink.received) == 2
    used = []
    for body, headers in sink.received:
        assert headers["webhook-id"] == event_id
        key, verified = _verify_any(body, headers, [secret, other])
        assert verified["id"] == event_id and verified["type"] == "invoice.finalized"
        assert verified["account_id"] == account and verified["data"] == payload
        used.append(key)
    assert sorted(used) == sorted([secret, other]), "each endpoint's copy is signed with its own secret"
    body, headers = sink.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    tampered = body.replace(b"1234", b"9234")
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        _verify_any(tampered, headers, [secret, other])
    stale = dict(headers, **{"webhook-timestamp": str(int((now - timedelta(minutes=10)).timestamp()))})
    with pytest.raises(WebhookVerificationError):
        _verify_any(body, stale, [secret, other])


def _verify_any(body: bytes, headers: dict[str, str], secrets: list[str]) -> tuple[str, dict[str, object]]:
    """Each endpoint has its own secret: exactly one of them must verify. Returns it and the
    payload the library parsed."""
    results = []
    for secret in secrets:
        try:
            results.append((secret, Webhook(secret).verify(body, headers)))
        except WebhookVerificationError:
            continue
    if len(results) != 1:
        raise WebhookVerificationError(f"{len(results)} secrets verified")
    secret, verified = results[0]
    assert isinstance(verified, dict) and verified == orjson.loads(body)
    return secret, verified


def test_library_signature_is_the_specs_formula() -> None:
    """What the library produces is base64(HMAC-SHA256(key, id.timestamp.body)), for any body
    bytes we send (UTF-8 JSON with non-ASCII text included)."""
    secret = signing.new_secret()
    body = orjson.dumps({"name": "Müller Ζήτα Жук 株式会社", "n": 1})
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, b"msg_1.1700000000." + body, hashlib.sha256).digest()
    assert signing.sign(secret, "msg_1", 1700000000, body) == "v1," + base64.b64encode(mac).decode()
    for bad in ("whsec_", "whsec_not base64!", "sk_live_x"):
        with pytest.raises(ValueError):
            signing.sign(bad, "msg_1", 1700000000, body)
