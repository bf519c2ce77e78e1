"""localstripe for the Stripe tests: a loopback-only launcher per session, a flush per test,
a webhook sink, and an independent signer for Stripe-Signature headers.

Import the fixtures into a test module (`from tests.stripe_support import localstripe_url`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import stripe

from creditgate.payments.stripe import StripeProcessor

LAUNCHER = Path(__file__).with_name("ls_loopback.py")
API_KEY = "sk_test_creditgate"
# Parameters real Stripe needs and localstripe rejects with a 400 (notes/localstripe.md).
DROP_PARAMS = "description,automatic_payment_methods"
T = TypeVar("T")


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """A localstripe on 127.0.0.1 (random port, no pickle file) for the session."""
    env = {**os.environ, "LOCALSTRIPE_DROP_PARAMS": DROP_PARAMS}
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("LOCALSTRIPE_PORT="):
            raise RuntimeError(f"localstripe launcher said {line!r}")
        url = f"http://127.0.0.1:{int(line.split('=', 1)[1])}"
        deadline = time.monotonic() + 20
        while True:
            try:
                _request(url + "/v1/customers", headers={"Authorization": f"Bearer {API_KEY}"})
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _request(url: str, data: bytes | None = None, method: str | None = None, **kw: Any) -> bytes:
    req = urllib.request.Request(url, data=data, method=method, **kw)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return bytes(resp.read())


def flush(url: str) -> None:
    """Forget every object (webhook registrations survive)."""
    _request(url + "/_config/data", method="DELETE")


def register_webhook(url: str, hook_id: str, target: str, secret: str) -> None:
    """Point localstripe's webhook `hook_id` at `target` (overwrites an earlier one)."""
    data = urllib.parse.urlencode({"url": target, "secret": secret}).encode()
    _request(f"{url}/_config/webhooks/{hook_id}", data=data)


def authenticate(url: str, payment_id: str, client_secret: str, *, success: bool) -> dict[str, Any]:
    """Finish (or fail) a 3-D Secure challenge: a route only localstripe has."""
    data = urllib.parse.urlencode({"client_secret": client_secret, "success": str(success).lower()}).encode()
    body = _request(
        f"{url}/v1/payment_intents/{payment_id}/_authenticate",
        data=data,
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    result: dict[str, Any] = orjson.loads(body)
    return result


def raw_client(url: str) -> stripe.StripeClient:
    """A plain synchronous SDK client, for setting up and checking state."""
    return stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=0)


def processor(url: str, secret: str = "whsec_unused") -> StripeProcessor:
    return StripeProcessor(API_KEY, secret, api_base=url, max_network_retries=0)


def with_processor(
    url: str, scenario: Callable[[StripeProcessor], Awaitable[T]], secret: str = "whsec_unused"
) -> T:
    """Run an async scenario against a processor created (and closed) in its own loop."""

    async def main() -> T:
        proc = processor(url, secret)
        try:
            return await scenario(proc)
        finally:
            await proc.aclose()

    return asyncio.run(main())


def stripe_signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """A Stripe-Signature header, written from Stripe's documented scheme (not the SDK's):
    t=<unix seconds>,v1=hex(HMAC-SHA256(secret, "<t>.<body>"))."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event_body(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    """A Stripe event envelope around `obj`, as Stripe would POST it."""
    return orjson.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "type": event_type,
            "livemode": False,
            "data": {"object": obj},
        }
    )


@dataclass
class Sink:
    """An HTTP receiver on 127.0.0.1 that keeps every POST (body and headers)."""

    server: ThreadingHTTPServer
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, in order; then 200
    delay: float = 0.0  # seconds to wait before answering
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(
        self, match: Callable[[bytes, dict[str, str]], bool], timeout: float = 10.0
    ) -> tuple[bytes, dict[str, str]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for body, headers in self.received:
                    if match(body, headers):
                        return body, headers
            time.sleep(0.05)
        raise AssertionError("no matching webhook arrived")


@pytest.fixture
def sink() -> Iterator[Sink]:
    holder: list[Sink] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            me = holder[0]
            with me.lock:
                me.received.append((body, {k.lower(): v for k, v in self.headers.items()}))
                status = me.statuses.pop(0) if me.statuses else 200
            time.sleep(me.delay)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up waiting (timeout tests)

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Sink(srv))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        srv.shutdown()
        srv.server_close()
