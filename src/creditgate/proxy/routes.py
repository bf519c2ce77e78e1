"""The proxy's routes, mounted on the app beside the API (left out of /openapi.json: they
speak the OpenAI and Anthropic wire formats, documented by those providers).

The model calls (POST) are served in front of FastAPI's stack: a request for one of them goes
through the app's own middleware (access log, NUL check, security headers, in the app's order)
straight to the relay, without FastAPI's routing scan over every API route or its own layers
(profiled: about a fifth of the proxy's request-path CPU). They stay registered on the app
too, so other methods get its usual 405 (and a path the front door does not know exactly, as
under a `root_path`, is still served, through FastAPI)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from creditgate.errors import CreditgateError, ValidationError
from creditgate.proxy import relay
from creditgate.proxy.auth import api_caller
from creditgate.proxy.errors import ANTHROPIC, OPENAI, error_response, internal_error_response
from creditgate.proxy.formats import CHAT, EMBEDDINGS, MESSAGES, RESPONSES, Endpoint
from creditgate.workflows import upstreams
from creditgate.workflows.context import Context
from creditgate.workflows.upstreams import Route

log = logging.getLogger("creditgate.proxy")

ROUTES: dict[str, Endpoint] = {
    "/openai/v1/chat/completions": CHAT,
    "/openai/v1/responses": RESPONSES,
    "/openai/v1/embeddings": EMBEDDINGS,
    "/anthropic/v1/messages": MESSAGES,
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_PAGE = 1000  # Anthropic's models list: `limit` is 1 to 1000 (default 20)


# -- model lists ------------------------------------------------------------------------------


def _openai_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "creditgate"}


def _anthropic_model(route: Route) -> dict[str, Any]:
    since = route.offered_since or EPOCH
    return {
        "type": "model",
        "id": route.name,
        "display_name": route.name,
        "created_at": since.isoformat().replace("+00:00", "Z"),
    }


async def _offered(ctx: Context, request: Request, family: str) -> list[Route]:
    """The family's models this caller may call (every offered model: any `api` token may)."""
    await api_caller(ctx, request)
    offered = await upstreams.routes(ctx)
    return sorted((r for (f, _), r in offered.items() if f == family), key=lambda r: r.name)


async def list_models(request: Request) -> Response:
    """The OpenAI-family models this account may call."""
    ctx: Context = request.app.state.services
    try:
        offered = await _offered(ctx, request, OPENAI)
    except CreditgateError as exc:
        return error_response(OPENAI, exc)
    body = {"object": "list", "data": [_openai_model(r.name) for r in offered]}
    return Response(orjson.dumps(body), media_type="application/json")


async def get_model(request: Request) -> Response:
    ctx: Context = request.app.state.services
    name = request.path_params["model"]
    try:
        await api_caller(ctx, request)
        await upstreams.find_route(ctx, OPENAI, name)
    except CreditgateError as exc:
        return error_response(OPENAI, exc)
    return Response(orjson.dumps(_openai_model(name)), media_type="application/json")


def _page(request: Request, names: list[str]) -> tuple[int, int]:
    """The slice [start, end) of `names` that Anthropic's `limit`, `after_id`, `before_id` ask for."""
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ValidationError(f"limit must be an integer between 1 and {MAX_PAGE}", field="limit")
    limit = int(raw)
    after, before = request.query_params.get("after_id"), request.query_params.get("before_id")
    if before is not None:  # the page that ends just before `before_id`
        end = names.index(before) if before in names else len(names)
        return max(0, end - limit), end
    start = names.index(after) + 1 if after in names else 0
    return start, min(len(names), start + limit)


async def list_anthropic_models(request: Request) -> Response:
    """The Anthropic-family models this account may call, in Anthropic's paged list shape."""
    ctx: Context = request.app.state.services
    try:
        offered = await _offered(ctx, request, ANTHROPIC)
        start, end = _page(request, [r.name for r in offered])
    except CreditgateError as exc:
        return error_response(ANTHROPIC, exc)
    data = [_anthropic_model(r) for r in offered[start:end]]
    more = end < len(offered) if request.query_params.get("before_id") is None else start > 0
    body = {
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def get_anthropic_model(request: Request) -> Response:
    ctx: Context = request.app.state.services
    try:
        await api_caller(ctx, request)
        route = await upstreams.find_route(ctx, ANTHROPIC, request.path_params["model"])
    except CreditgateError as exc:
        return error_response(ANTHROPIC, exc)
    return Response(orjson.dumps(_anthropic_model(route)), media_type="application/json")


# -- the model calls, in front of FastAPI ------------------------------------------------------


@dataclass(frozen=True)
class _Named:
    path: str  # what the access log names the route by (scope["route"].path)


class ProxyFront:
    """ASGI app: a POST to one of `calls` (by exact path) goes to its handler; every other
    request to `app`, the full stack."""

    def __init__(self, app: ASGIApp, calls: dict[str, ASGIApp]) -> None:
        self.app, self.calls = app, calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            call = self.calls.get(scope["path"])
            if call is not None:
                await call(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _call_app(path: str, endpoint: Endpoint, client: Callable[[], aiohttp.ClientSession]) -> ASGIApp:
    named = _Named(path)

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = named
        request = Request(scope, receive)
        try:
            response = await relay.handle(endpoint, client(), request)
        except Exception:
            log.exception("proxy: %s failed", path)
            response = internal_error_response(endpoint.family)
        await response(scope, receive, send)

    return serve


def _with_app_middleware(app: Any, inner: ASGIApp) -> ASGIApp:
    """`inner` wrapped in the app's own middleware, outermost first, as Starlette wraps its
    router (FastAPI's error and exception layers left out: `inner` renders its own errors)."""
    for middleware in reversed(app.user_middleware):
        cls, args, kwargs = middleware
        inner = cls(inner, *args, **kwargs)
    return inner


def install(app: Any) -> None:
    """Mount the proxy routes on a creditgate app and give them one shared connection pool,
    closed when the app stops."""
    settings = app.state.services.settings
    holder: dict[str, aiohttp.ClientSession] = {}

    def client() -> aiohttp.ClientSession:
        if "client" not in holder:  # built in the serving event loop
            holder["client"] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=settings.proxy_max_connections, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600),
                cookie_jar=aiohttp.DummyCookieJar(),  # one session serves every customer
                raise_for_status=False,
            )
        return holder["client"]

    calls = {path: _call_app(path, endpoint, client) for path, endpoint in ROUTES.items()}

    def handler(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:  # the same through FastAPI (e.g. a root_path)
            return await relay.handle(endpoint, client(), request)

        return handle

    for path, endpoint in ROUTES.items():
        app.add_route(path, handler(endpoint), methods=["POST"], include_in_schema=False)
    app.add_route("/openai/v1/models", list_models, methods=["GET"], include_in_schema=False)
    app.add_route("/openai/v1/models/{model:path}", get_model, methods=["GET"], include_in_schema=False)
    app.add_route("/anthropic/v1/models", list_anthropic_models, methods=["GET"], include_in_schema=False)
    app.add_route(
        "/anthropic/v1/models/{model:path}", get_anthropic_model, methods=["GET"], include_in_schema=False
    )

    build = app.build_middleware_stack

    def build_with_proxy_front() -> ASGIApp:
        front = {path: _with_app_middleware(app, call) for path, call in calls.items()}
        return ProxyFront(build(), front)

    app.build_middleware_stack = build_with_proxy_front

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            try:
                yield state
            finally:
                if "client" in holder:
                    await holder.pop("client").close()

    app.router.lifespan_context = lifespan
