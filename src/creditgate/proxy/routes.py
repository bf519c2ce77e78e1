"""The proxy's routes, mounted on the app beside the API (left out of /openapi.json: they
speak the OpenAI and Anthropic wire formats, documented by those providers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from creditgate.errors import CreditgateError
from creditgate.proxy import relay
from creditgate.proxy.auth import api_caller
from creditgate.proxy.errors import OPENAI, error_response
from creditgate.proxy.formats import CHAT, EMBEDDINGS, MESSAGES, RESPONSES, Endpoint
from creditgate.workflows import upstreams
from creditgate.workflows.context import Context

ROUTES: dict[str, Endpoint] = {
    "/openai/v1/chat/completions": CHAT,
    "/openai/v1/responses": RESPONSES,
    "/openai/v1/embeddings": EMBEDDINGS,
    "/anthropic/v1/messages": MESSAGES,
}


def _model_view(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "creditgate"}


async def list_models(request: Request) -> Response:
    """The OpenAI-family models this account may call."""
    ctx: Context = request.app.state.services
    try:
        await api_caller(ctx, request)
        offered = sorted(name for family, name in await upstreams.routes(ctx) if family == OPENAI)
    except CreditgateError as exc:
        return error_response(OPENAI, exc)
    body = {"object": "list", "data": [_model_view(name) for name in offered]}
    return Response(orjson.dumps(body), media_type="application/json")


async def get_model(request: Request) -> Response:
    ctx: Context = request.app.state.services
    name = request.path_params["model"]
    try:
        await api_caller(ctx, request)
        await upstreams.find_route(ctx, OPENAI, name)
    except CreditgateError as exc:
        return error_response(OPENAI, exc)
    return Response(orjson.dumps(_model_view(name)), media_type="application/json")


def install(app: Any) -> None:
    """Mount the proxy routes on a creditgate app and give them one shared connection pool,
    closed when the app stops."""
    settings = app.state.services.settings
    pool = httpx.Limits(
        max_connections=settings.proxy_max_connections,
        max_keepalive_connections=settings.proxy_max_connections,
    )
    holder: dict[str, httpx.AsyncClient] = {}

    def client() -> httpx.AsyncClient:
        if "client" not in holder:  # built in the serving event loop
            holder["client"] = httpx.AsyncClient(limits=pool, timeout=httpx.Timeout(600, connect=10))
        return holder["client"]

    def handler(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            return await relay.handle(endpoint, client(), request)

        return handle

    for path, endpoint in ROUTES.items():
        app.add_route(path, handler(endpoint), methods=["POST"], include_in_schema=False)
    app.add_route("/openai/v1/models", list_models, methods=["GET"], include_in_schema=False)
    app.add_route("/openai/v1/models/{model:path}", get_model, methods=["GET"], include_in_schema=False)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            try:
                yield state
            finally:
                if "client" in holder:
                    await holder.pop("client").aclose()

    app.router.lifespan_context = lifespan
