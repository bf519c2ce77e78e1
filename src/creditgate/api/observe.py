"""ASGI middleware: a request id, one access log line and the HTTP metrics per request."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Collection
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditgate.observability import logs, metrics

log = logs.get("creditgate.access")
REQUEST_ID_HEADER = b"x-request-id"
_GOOD_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
UNMATCHED = "<unmatched>"


class AccessLog:
    """Outermost middleware. Logs method, route template, status, latency, request id and the
    caller's account id; never a header, a query string or a body (where tokens live)."""

    def __init__(self, app: ASGIApp, exact_paths: Collection[str] = ()) -> None:
        self.app = app
        self.exact_paths = frozenset(exact_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = self._route(scope)
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(method, route).observe(elapsed)
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            }
            account = _account_id(scope)
            if account:
                fields["account_id"] = account
            if route == UNMATCHED:
                fields["path"] = scope["path"]
            log.info("request", **fields)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        return scope["path"] if scope["path"] in self.exact_paths else UNMATCHED


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is a plain short id, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _GOOD_ID.match(value):
            return str(value.decode())
    return f"req_{random.getrandbits(64):016x}"  # an id, not a secret: no system call per request


def _account_id(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    found = state.get("account_id") if isinstance(state, dict) else None
    if found:
        return str(found)
    params = scope.get("path_params") or {}
    for key in ("account_id", "team_id"):
        if params.get(key):
            return str(params[key])
    return None
