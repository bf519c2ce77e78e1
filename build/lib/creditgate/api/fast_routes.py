"""Exact-path POST routes served in front of FastAPI's routing.

FastAPI spends about 100 us of CPU per request on routing, dependency solving and its
middleware stack (perf-floor.md); on `POST /v1/gateway/authorize`, which a gateway calls
before every model call, that was about a fifth of the server's CPU. The handlers here are
the same functions FastAPI would call (the routes stay registered for the docs); this only
skips the walk to them. Domain errors render exactly as FastAPI's handler renders them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from creditgate.api.errors import render
from creditgate.errors import CreditgateError

Handler = Callable[[Request], Awaitable[Response]]


class FastPostRoutes:
    """ASGI middleware: POST to one of `routes` (exact path) goes straight to its handler."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, Handler]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except CreditgateError as exc:
            response = render(request, exc.status, exc)
        await response(scope, receive, send)
