"""`POST /webhooks/stripe` with bodies that are not events, on SQLite and PostgreSQL: a huge
body is a 413 after at most 2 MiB is read, and a correctly signed body that is no event (or
an event without an id) is a 400 naming the body, with nothing stored. No card processor is
called: the server is configured for Stripe, and verifying a webhook needs only the secret."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest

from creditgate.api.responses import MAX_BODY_BYTES
from creditgate.payments.gateway import WebhookEventError, WebhookSignatureError
from creditgate.payments.sandbox import SandboxProcessor, sign_webhook
from tests import stripe_support as ls
from tests import support

SECRET = "whsec_body_tests"


@pytest.fixture(scope="module")
def stripe_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[support.LiveServer]:
    settings = support.make_settings(
        database_url,
        tmp_path_factory.mktemp("stripe-bodies"),
        payments="stripe",
        stripe_api_key=ls.API_KEY,
        stripe_webhook_secret=SECRET,
        stripe_api_base="http://127.0.0.1:9",  # never called by these tests
        stripe_max_network_retries=0,
    )
    with support.live_server(settings) as live:
        yield live


def _post(server: support.LiveServer, body: bytes) -> httpx.Response:
    headers = {"Stripe-Signature": ls.stripe_signature(SECRET, body), "Content-Type": "application/json"}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        return client.post("/webhooks/stripe", content=body, headers=headers)


def _inbox_ids(server: support.LiveServer) -> set[str]:
    with server.admin() as c:
        r = c.get("/admin/v1/webhooks/inbox", params={"limit": 1000})
        assert r.status_code == 200, r.text
    return {e["event_id"] for e in r.json()["events"]}


def test_a_streamed_50_mb_webhook_is_a_413_and_the_server_carries_on(
    stripe_server: support.LiveServer,
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(800):  # 800 x 64 KiB = 50 MiB, chunked (no Content-Length)
            yield b" " * 65536

    with httpx.Client(base_url=stripe_server.base_url, timeout=60) as client:
        streamed = client.post(
            "/webhooks/stripe", content=chunks(), headers={"Stripe-Signature": "t=1,v1=00"}
        )
        declared = client.post("/webhooks/stripe", content=b" " * (MAX_BODY_BYTES + 1))
    for r in (streamed, declared):
        assert r.status_code == 413, r.text
        assert r.json()["error"]["field"] == "body"
    event_id = f"evt_{uuid.uuid4().hex}"
    ok = _post(
        stripe_server, ls.event_body("customer.created", {"id": "cus_1", "object": "customer"}, event_id)
    )
    assert ok.status_code == 200 and ok.json()["status"] == "ignored", ok.text


NOT_EVENTS: list[tuple[str, bytes]] = [
    ("array", b"[1,2]"),
    ("string", b'"evt"'),
    ("number", b"42"),
    ("not JSON", b"{"),
    ("no id", orjson.dumps({"object": "event", "type": "customer.created", "data": {"object": {}}})),
    ("empty id", orjson.dumps({"id": "", "type": "customer.created", "data": {"object": {}}})),
    ("numeric id", orjson.dumps({"id": 7, "type": "customer.created", "data": {"object": {}}})),
    ("id too long", orjson.dumps({"id": "e" * 256, "type": "customer.created", "data": {}})),
    ("NUL in id", orjson.dumps({"id": "evt_\x00", "type": "customer.created", "data": {}})),
    ("no type", orjson.dumps({"id": "evt_notype", "data": {"object": {}}})),
    ("data a list", orjson.dumps({"id": "evt_list", "type": "payment_intent.succeeded", "data": [1]})),
    ("NUL in object", orjson.dumps({"id": "evt_nul", "type": "x", "data": {"object": {"id": "pi_\x00"}}})),
]


@pytest.mark.parametrize(("name", "body"), NOT_EVENTS, ids=[c[0] for c in NOT_EVENTS])
def test_a_signed_body_that_is_no_event_is_a_400_and_stores_nothing(
    stripe_server: support.LiveServer, database_url: str, name: str, body: bytes
) -> None:
    before = support.query(database_url, "SELECT count(*) FROM webhook_inbox")
    r = _post(stripe_server, body)
    assert r.status_code == 400, (name, r.text)
    error = r.json()["error"]
    assert error["field"] == "body" and "event" in error["message"], error
    assert support.query(database_url, "SELECT count(*) FROM webhook_inbox") == before
    assert "" not in _inbox_ids(stripe_server)


def test_an_event_with_an_unknown_object_shape_is_still_stored(stripe_server: support.LiveServer) -> None:
    event_id = f"evt_{uuid.uuid4().hex}"
    body = orjson.dumps({"id": event_id, "type": "payment_intent.succeeded", "data": {"object": [1]}})
    r = _post(stripe_server, body)
    assert r.status_code == 200 and r.json()["id"] == event_id, r.text
    assert event_id in _inbox_ids(stripe_server)


def test_sandbox_webhooks_refuse_non_events_the_same_way() -> None:
    sandbox = SandboxProcessor(store=None)  # type: ignore[arg-type]  # parsing needs no store
    for body in (
        b"[1,2]",
        b'{"type": "payment.succeeded"}',
        b'{"id": "", "type": "x"}',
        b'{"id": "e", "type": 5}',
    ):
        with pytest.raises(WebhookEventError):
            sandbox.parse_webhook(body, {"Sandbox-Signature": sign_webhook(body)})
    body = b'{"id": "evt_1", "type": "payment.succeeded", "data": {"payment_id": 5}}'
    with pytest.raises(WebhookEventError):
        sandbox.parse_webhook(body, {"Sandbox-Signature": sign_webhook(body)})
    with pytest.raises(WebhookSignatureError):
        sandbox.parse_webhook(body, {"Sandbox-Signature": "0" * 64})
    good = (
        b'{"id": "evt_2", "type": "payment.succeeded", "data": {"payment_id": "pay_1", "metadata": {"a": 1}}}'
    )
    event = sandbox.parse_webhook(good, {"Sandbox-Signature": sign_webhook(good)})
    assert (event.id, event.type, event.payment_id, dict(event.metadata)) == (
        "evt_2",
        "payment.succeeded",
        "pay_1",
        {"a": "1"},
    )
