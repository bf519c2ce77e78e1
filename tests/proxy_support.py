"""Test helpers of the metering proxy: a fake upstream on loopback speaking the OpenAI and
Anthropic APIs (streams included) with the usage the test chose, and a live creditgate with the
proxy mounted."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from creditgate import proxy
from creditgate.api import create_app
from creditgate.config import Settings
from tests import support

UPSTREAM_KEY = "sk-upstream-SECRET-7c1f0e9a4b"


@dataclass
class Script:
    """What the fake upstream answers next (tests set it before a call)."""

    input_tokens: int = 100
    output_tokens: int = 20
    cached_tokens: int = 0
    chunks: list[str] = field(default_factory=lambda: ["Hel", "lo", " wor", "ld"])
    status: int = 200  # a status other than 200: answered at once, with an error body
    fail_after: int | None = None  # break the stream (drop the connection) after this many chunks
    hang_after: int | None = None  # stop sending after this many chunks, until released
    barrier: int | None = None  # hold every answer until this many requests have arrived
    chunk_delay: float = 0.0  # seconds between stream chunks (the bench's token rate)


class FakeUpstream:
    """An OpenAI- and Anthropic-compatible upstream on loopback."""

    def __init__(self, key: str = UPSTREAM_KEY) -> None:
        self.key = key
        self.script = Script()
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.released = threading.Event()
        self.abandoned = threading.Event()  # a hanging stream's connection was closed on it
        self._arrived = 0
        self._all_arrived: asyncio.Event | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/responses", self.responses, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
            ]
        )

    def reset(self, **script: Any) -> Script:
        self.script = Script(**script)
        self.requests.clear()
        self.released.clear()
        self.abandoned.clear()
        self._arrived = 0
        self._all_arrived = None
        return self.script

    # -- plumbing -------------------------------------------------------------------------

    async def _accept(self, request: Request, anthropic: bool) -> tuple[dict[str, Any], Response | None]:
        body = orjson.loads(await request.body())
        self.requests.append((request.url.path, dict(request.headers), body))
        presented = request.headers.get("x-api-key") if anthropic else request.headers.get("authorization")
        expected = self.key if anthropic else f"Bearer {self.key}"
        if presented != expected:
            return body, _json({"error": {"message": "bad upstream key", "type": "auth"}}, 401)
        script = self.script
        if script.barrier is not None:
            self._arrived += 1
            if self._all_arrived is None:
                self._all_arrived = asyncio.Event()
            if self._arrived >= script.barrier:
                self._all_arrived.set()
            deadline = time.monotonic() + 60
            while not (self._all_arrived.is_set() or self.released.is_set()) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        if script.status != 200:
            return body, _json(
                {"error": {"message": "upstream trouble", "type": "server_error"}}, script.status
            )
        return body, None

    async def _paced(self, events: list[bytes], after: list[bytes]) -> AsyncIterator[bytes]:
        """`events` are the content events (counted by fail_after / hang_after); `after` ends."""
        script = self.script
        for i, event in enumerate(events):
            if script.fail_after is not None and i == script.fail_after:
                raise RuntimeError("upstream broke mid-stream")
            if script.hang_after is not None and i == script.hang_after:
                deadline = time.monotonic() + 30
                try:
                    while not self.released.is_set() and time.monotonic() < deadline:
                        await asyncio.sleep(0.02)
                except asyncio.CancelledError:  # the caller closed the connection
                    self.abandoned.set()
                    raise
                return
            if script.chunk_delay:
                await asyncio.sleep(script.chunk_delay)
            yield event
        for event in after:
            yield event

    # -- OpenAI ---------------------------------------------------------------------------

    def _openai_usage(self) -> dict[str, Any]:
        s = self.script
        return {
            "prompt_tokens": s.input_tokens,
            "completion_tokens": s.output_tokens,
            "total_tokens": s.input_tokens + s.output_tokens,
            "prompt_tokens_details": {"cached_tokens": s.cached_tokens},
        }

    async def chat(self, request: Request) -> Response:
        body, refused = await self._accept(request, anthropic=False)
        if refused:
            return refused
        model, s = body["model"], self.script
        base = {"id": "chatcmpl-1", "created": 0, "model": model}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(s.chunks)}
            return _json(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": self._openai_usage(),
                }
            )
        usage_on = bool((body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if usage_on else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return _sse({**base, "object": "chat.completion.chunk", "choices": [choice], **extra})

        events = [chunk({"role": "assistant", "content": ""})] + [chunk({"content": c}) for c in s.chunks]
        after = [chunk({}, "stop")]
        if usage_on:
            after.append(
                _sse(
                    {**base, "object": "chat.completion.chunk", "choices": [], "usage": self._openai_usage()}
                )
            )
        after.append(b"data: [DONE]\n\n")
        # the role chunk is not content: fail_after / hang_after count the content chunks
        return _stream(self._paced(events[1:], after), first=events[0])

    async def responses(self, request: Request) -> Response:
        body, refused = await self._accept(request, anthropic=False)
        if refused:
            return refused
        s = self.script
        usage = {
            "input_tokens": s.input_tokens,
            "output_tokens": s.output_tokens,
            "total_tokens": s.input_tokens + s.output_tokens,
            "input_tokens_details": {"cached_tokens": s.cached_tokens},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
        text = "".join(s.chunks)
        output = [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ]
        response = {
            "id": "resp_1",
            "object": "response",
            "created_at": 0,
            "model": body["model"],
            "status": "completed",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
        }
        if not body.get("stream"):
            return _json(response)
        created = _sse(
            {"type": "response.created", "sequence_number": 0, "response": {**response, "usage": None}}
        )
        events = [
            _sse(
                {
                    "type": "response.output_text.delta",
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": c,
                    "sequence_number": i + 1,
                },
                event="response.output_text.delta",
            )
            for i, c in enumerate(s.chunks)
        ]
        done = _sse(
            {"type": "response.completed", "sequence_number": 99, "response": response}, "response.completed"
        )
        return _stream(self._paced(events, [done]), first=created)

    async def embeddings(self, request: Request) -> Response:
        body, refused = await self._accept(request, anthropic=False)
        if refused:
            return refused
        s = self.script
        return _json(
            {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5, 0.125]}],
                "model": body["model"],
                "usage": {"prompt_tokens": s.input_tokens, "total_tokens": s.input_tokens},
            }
        )

    # -- Anthropic ------------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        body, refused = await self._accept(request, anthropic=True)
        if refused:
            return refused
        s = self.script
        uncached = s.input_tokens - s.cached_tokens
        usage = {
            "input_tokens": uncached,
            "output_tokens": s.output_tokens,
            "cache_read_input_tokens": s.cached_tokens,
        }
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": "".join(s.chunks)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return _json(message)
        start_usage = {**usage, "output_tokens": 1}
        start = _sse(
            {
                "type": "message_start",
                "message": {**message, "content": [], "stop_reason": None, "usage": start_usage},
            },
            "message_start",
        )
        block = _sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        )
        deltas = [
            _sse(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": c}},
                "content_block_delta",
            )
            for c in s.chunks
        ]
        after = [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": s.output_tokens},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        return _stream(self._paced(deltas, after), first=start + block)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def _stream(events: AsyncIterator[bytes], *, first: bytes) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield first
        async for event in events:
            yield event

    return StreamingResponse(body(), media_type="text/event-stream")


@contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a thread on loopback; yields its base URL."""
    port = port or support.free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def fake_upstream() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    try:
        with serve(fake.app) as url:
            yield fake, url
    finally:
        fake.released.set()


@contextmanager
def proxy_server(settings: Settings) -> Iterator[support.LiveServer]:
    """A live creditgate with the metering proxy mounted (as `creditgate serve` has it)."""
    port = support.free_port()
    settings = settings.replace(host="127.0.0.1", port=port)
    app = create_app(settings)
    proxy.install(app)
    with serve(app, port) as url:
        yield support.LiveServer(settings=settings, base_url=url)


def add_upstream(server: support.LiveServer, **body: Any) -> dict[str, Any]:
    with server.admin() as c:
        r = c.post("/admin/v1/upstreams", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())


def wait_closed(server: support.LiveServer, account_id: str) -> list[tuple[Any, ...]]:
    """The account's holds, once none is open (the settle of a cut stream runs after the
    response ended)."""
    deadline = time.monotonic() + 30
    while True:
        rows = support.query(
            server.settings.database_url,
            "SELECT status, amount, captured FROM holds WHERE account_id = :a",
            a=account_id,
        )
        if rows and all(r[0] != "open" for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"holds still open: {rows}")
        time.sleep(0.05)


def events_of(server: support.LiveServer, account_id: str) -> list[tuple[Any, ...]]:
    return support.query(
        server.settings.database_url,
        "SELECT input_tokens, output_tokens, cached_tokens, cost, metadata FROM usage_events"
        " WHERE account_id = :a",
        a=account_id,
    )
