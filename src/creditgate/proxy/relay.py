"""Forward one call upstream, metered: hold the worst case, relay the answer (streamed or not),
settle the true usage. Whatever happens after the hold (an upstream failure, a timeout, the
client going away mid-stream, this task being cancelled), the hold is settled or voided by a
task that cancellation cannot interrupt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from creditgate.errors import (
    CreditgateError,
    PayloadTooLarge,
    UpstreamFailed,
    UpstreamTimeout,
    ValidationError,
)
from creditgate.proxy.auth import api_caller
from creditgate.proxy.errors import ANTHROPIC, error_response, stream_error_event
from creditgate.proxy.formats import Endpoint, StreamMeter, requested_output, usage_of
from creditgate.workflows import proxy_calls, upstreams
from creditgate.workflows.context import Context
from creditgate.workflows.proxy_calls import Call, Usage
from creditgate.workflows.upstreams import Route

log = logging.getLogger("creditgate.proxy")

MAX_REQUEST_BYTES = 32 * 1024 * 1024
ANTHROPIC_VERSION = "2023-06-01"
_closing: set[asyncio.Task[None]] = set()  # settles in flight, kept from the garbage collector


async def _close(
    ctx: Context, call: Call, usage: Usage | None, cut: str | None, upstream: aiohttp.ClientResponse | None
) -> None:
    if upstream is not None:
        # back to the pool when the answer was read to its end; otherwise the connection is
        # closed, which cancels the upstream when it is still generating
        upstream.release()
    try:
        await proxy_calls.close_call(ctx, call, usage, cut=cut)
    except Exception:
        # the hold stays open until the expire_holds job releases it (CREDITGATE_HOLD_TTL_SECONDS)
        log.exception("proxy: could not close hold %s of account %s", call.hold_id, call.account_id)


async def finish(
    ctx: Context,
    call: Call,
    usage: Usage | None,
    *,
    cut: str | None = None,
    upstream: aiohttp.ClientResponse | None = None,
) -> None:
    """Settle (or void, without usage) in a task of its own, shielded from cancellation."""
    task = asyncio.get_running_loop().create_task(_close(ctx, call, usage, cut, upstream))
    _closing.add(task)
    task.add_done_callback(_closing.discard)
    await asyncio.shield(task)


async def read_body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise PayloadTooLarge(f"request body exceeds {MAX_REQUEST_BYTES} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _headers(endpoint: Endpoint, route: Route, request: Request) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": request.headers.get("accept", "*/*")}
    if endpoint.family == ANTHROPIC:
        headers["x-api-key"] = route.api_key or ""
        headers["anthropic-version"] = request.headers.get("anthropic-version", ANTHROPIC_VERSION)
        beta = request.headers.get("anthropic-beta")
        if beta:
            headers["anthropic-beta"] = beta
    else:
        headers["authorization"] = f"Bearer {route.api_key or ''}"
    return headers


UPSTREAM_ERRORS = (aiohttp.ClientError, TimeoutError)  # aiohttp's timeouts are TimeoutErrors


def _upstream_error(exc: Exception) -> UpstreamFailed:
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout("The upstream provider did not answer in time.")
    return UpstreamFailed(f"The upstream provider could not be reached ({type(exc).__name__}).")


async def _refused_upstream(endpoint: Endpoint, upstream: aiohttp.ClientResponse) -> Response:
    """An upstream error answer: its 4xx passed on (never one about our key), 5xx as 502."""
    data = await upstream.read()
    status = upstream.status
    if status in (401, 403):
        return error_response(
            endpoint.family, UpstreamFailed("The upstream provider refused creditgate's key.")
        )
    if status >= 500:
        failure = UpstreamTimeout if status == 504 else UpstreamFailed
        return error_response(endpoint.family, failure(f"The upstream provider failed (HTTP {status})."))
    headers = {k: v for k, v in upstream.headers.items() if k.lower() == "retry-after"}
    return Response(data, status_code=status, headers=headers, media_type="application/json")


async def _prepare(ctx: Context, endpoint: Endpoint, request: Request) -> tuple[Call, dict[str, Any], bool]:
    """Authenticate, parse, find the route and hold the worst case. (call, upstream body,
    whether the client asked for the usage chunk)."""
    caller = await api_caller(ctx, request)
    raw = await read_body(request)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("the request body must be JSON", field="body") from exc
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object", field="body")
    route = await upstreams.find_route(ctx, endpoint.family, body.get("model"))
    wants_usage = True
    if body.get("stream") is True and endpoint.kind == "chat":
        options = body.get("stream_options")
        options = options if isinstance(options, dict) else {}
        wants_usage = options.get("include_usage") is True
        body["stream_options"] = {**options, "include_usage": True}
    body["model"] = route.upstream_model
    ceiling = proxy_calls.output_ceiling(route, requested_output(endpoint, body))
    input_estimate = proxy_calls.estimate_input_tokens(len(raw))
    assert caller.account_id is not None
    call = await proxy_calls.open_call(
        ctx, caller.account_id, route, input_estimate, ceiling, caller.token_id
    )
    return call, body, wants_usage


async def handle(endpoint: Endpoint, client: aiohttp.ClientSession, request: Request) -> Response:
    """One proxied call, from the customer's request to its settled charge."""
    ctx: Context = request.app.state.services
    try:
        call, body, wants_usage = await _prepare(ctx, endpoint, request)
    except CreditgateError as exc:
        return error_response(endpoint.family, exc)
    route = call.route
    upstream: aiohttp.ClientResponse | None = None
    handed_over = False
    try:
        try:
            upstream = await client.post(
                route.base_url + endpoint.path,
                data=orjson.dumps(body),
                headers=_headers(endpoint, route, request),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=route.read_timeout,  # waiting for a free connection of the pool, too
                    sock_connect=route.connect_timeout,
                    sock_read=route.read_timeout,
                ),
            )
            if upstream.status >= 400:
                return await _refused_upstream(endpoint, upstream)
            if body.get("stream") is True:
                meter = StreamMeter(endpoint, client_wants_usage=wants_usage)
                handed_over = True
                return MeteredStream(ctx, call, meter, upstream)
            data = await upstream.read()
        except UPSTREAM_ERRORS as exc:
            return error_response(endpoint.family, _upstream_error(exc))
        handed_over = True
        usage = _answer_usage(endpoint, call, data)
        return SettledAnswer(data, upstream.status, partial(finish, ctx, call, usage, upstream=upstream))
    finally:
        if not handed_over:  # refused, failed or cancelled before an answer: nothing generated
            await finish(ctx, call, None, upstream=upstream)


def _answer_usage(endpoint: Endpoint, call: Call, data: bytes) -> Usage:
    """The usage an answer reports, or, when it reports none, an estimate from its size."""
    try:
        usage = usage_of(endpoint, orjson.loads(data))
    except orjson.JSONDecodeError:
        usage = None
    if usage is not None:
        return usage
    return Usage(call.input_estimate, proxy_calls.estimate_output_tokens(len(data), 0), estimated=True)


class SettledAnswer(Response):
    """A whole answer, settled once it has been sent (off the call's latency), however the
    sending ends."""

    def __init__(self, data: bytes, status: int, settle: Callable[[], Awaitable[None]]) -> None:
        super().__init__(data, status_code=status, media_type="application/json")
        self.settle = settle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.settle()


class MeteredStream(StreamingResponse):
    """The upstream's event stream, passed through event by event while a StreamMeter follows
    it; when it ends, however it ends, the call is settled for what was generated."""

    def __init__(
        self, ctx: Context, call: Call, meter: StreamMeter, upstream: aiohttp.ClientResponse
    ) -> None:
        self.ctx, self.call, self.meter, self.upstream = ctx, call, meter, upstream
        self.ended = False
        self.cut: str | None = None
        super().__init__(
            self._events(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )

    def _keep(self, block: bytes) -> bool:
        name: str | None = None
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode(errors="replace")
        if not data or data == [b"[DONE]"]:
            return True
        try:
            parsed = orjson.loads(b"\n".join(data))
        except orjson.JSONDecodeError:
            return True
        if name == "error" or (isinstance(parsed, dict) and "error" in parsed and "choices" not in parsed):
            self.cut = "upstream_error"
        return self.meter.event(name, parsed)

    async def _events(self) -> Any:
        family = self.meter.endpoint.family
        buffer = b""
        try:
            async for chunk in self.upstream.content.iter_any():
                buffer = (buffer + chunk).replace(b"\r\n", b"\n")
                while (end := buffer.find(b"\n\n")) >= 0:
                    block, buffer = buffer[:end], buffer[end + 2 :]
                    if self._keep(block):
                        yield block + b"\n\n"
            if buffer.strip() and self._keep(buffer):
                yield buffer + b"\n\n"
            self.ended = True
        except UPSTREAM_ERRORS as exc:
            self.cut = "upstream_error"
            log.warning("proxy: upstream stream of hold %s broke: %s", self.call.hold_id, type(exc).__name__)
            yield stream_error_event(family, _upstream_error(exc).message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def run_then_stop(work: Any) -> None:
                    await work()
                    group.cancel_scope.cancel()

                group.start_soon(run_then_stop, partial(self.stream_response, send))
                await run_then_stop(partial(self.listen_for_disconnect, receive))
        finally:
            cut = self.cut or (None if self.ended else "client_disconnect")
            usage = self.meter.charged_usage(self.call.input_estimate)
            await finish(self.ctx, self.call, usage, cut=cut, upstream=self.upstream)
