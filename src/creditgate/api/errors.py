"""Map errors to responses. Each API prefix may register its own wire shape."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from creditgate.api.responses import JSON
from creditgate.errors import CreditgateError, ValidationError

log = logging.getLogger("creditgate.api")

# (path prefix, renderer) pairs; the first matching prefix renders the error.
Renderer = Callable[[Request, int, CreditgateError], Response]
_renderers: list[tuple[str, Renderer]] = []


def register_renderer(prefix: str, renderer: Renderer) -> None:
    if (prefix, renderer) not in _renderers:
        _renderers.append((prefix, renderer))


def default_renderer(_request: Request, status: int, exc: CreditgateError) -> Response:
    body = {"error": {"type": exc.code, "message": exc.message, "field": exc.field}}
    return JSON(body, status_code=status)


def _under(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` or below it, by whole segments (`/web` is not `/webhooks`)."""
    base = prefix.rstrip("/")
    return path == base or path.startswith(base + "/")


def render(request: Request, status: int, exc: CreditgateError) -> Response:
    for prefix, renderer in _renderers:
        if _under(request.url.path, prefix):
            return renderer(request, status, exc)
    return default_renderer(request, status, exc)


class _RouteError(CreditgateError):
    pass


def internal_error(request: Request) -> Response:
    """The 500 for an unexpected exception (logged with its traceback)."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    err = _RouteError("internal error")
    err.code = "internal_error"
    return render(request, 500, err)


class RejectNul:
    """ASGI middleware: a NUL character in the path or query string is a 400 before any
    route sees it (PostgreSQL cannot store or compare text holding U+0000)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")):
            request = Request(scope)
            err = ValidationError("the URL must not contain the NUL character (%00)", field="url")
            await render(request, 400, err)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def allowed_methods(request: Request) -> str:
    """The `Allow` header of a 405: every method some route serves on this path (Starlette's
    own names only the first matching route's)."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(request.app.state, "allow_table", None)
    if table is None:
        table = request.app.state.allow_table = [
            (ctx.path_regex, set(ctx.methods or ()))
            for ctx in iter_route_contexts(request.app.routes)
            if getattr(ctx, "path_regex", None) is not None
        ]
    methods: set[str] = set()
    for regex, route_methods in table:
        if regex.match(request.url.path):
            methods |= route_methods
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    @app.exception_handler(CreditgateError)
    async def _domain(request: Request, exc: CreditgateError) -> Response:
        return render(request, exc.status, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        err = _RouteError(str(exc.detail))
        err.code = {404: "no_route", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if exc.status_code == 404:
            err.message = "No route for the URI"
        response = render(request, exc.status_code, err)
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods(request)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        err = _RouteError(f"{field or 'request'}: {first.get('msg', 'invalid')}", field=field)
        err.code = "invalid_request"
        return render(request, 400, err)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return internal_error(request)
