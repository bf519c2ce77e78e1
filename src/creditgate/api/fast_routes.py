"""Exact-path POST routes served in front of FastAPI's whole stack.

FastAPI spends about 100 us of CPU per request on routing, dependency solving and its
middleware stack (perf-floor.md); on `POST /v1/gateway/authorize`, which a gateway calls
before every model call, that was about a fifth of the server's CPU. Profiled under load
(py-spy), the layers FastAPI itself puts around every request (its error, telemetry and
body-limit middleware, before ours) were another ~10 % of the process. The handlers here are
the same functions FastAPI would call (the routes stay registered for the docs); a request
for one of them goes through our own access log and NUL check only, and its errors render
exactly as FastAPI's handlers render them (a domain error as its status, anything else as
the logged 500).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from creditgate.api.errors import internal_error, render
from creditgate.errors import CreditgateError

Handler = Callable[..., Awaitable[Response]]  # (request) or, for a template, (request, param)


@dataclass(frozen=True)
class _Template:
    """A route template with one path parameter, e.g. `/v1/gateway/holds/{hold_id}/settle`."""

    path: str  # what the access log names the route by (scope["route"].path)
    name: str
    prefix: str
    suffix: str
    handler: Handler

    def param(self, path: str) -> str | None:
        """The parameter's value when `path` matches (non-empty, no '/'), else None."""
        if not (path.startswith(self.prefix) and path.endswith(self.suffix)):
            return None
        value = path[len(self.prefix) : len(path) - len(self.suffix)]
        return value if value and "/" not in value else None


class FastPostRoutes:
    """ASGI app: POST to one of `routes` (an exact path, or a template with one `{param}`)
    goes through `wrap` (our middleware) to its handler; every other request goes to `app`,
    the full stack."""

    def __init__(
        self, app: ASGIApp, routes: Mapping[str, Handler], wrap: Callable[[ASGIApp], ASGIApp]
    ) -> None:
        self.app = app
        self.exact = {path: h for path, h in routes.items() if "{" not in path}
        self.templates = [_template(path, h) for path, h in routes.items() if "{" in path]
        self.fast = wrap(self._serve)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path in self.exact:
                await self.fast(scope, receive, send)
                return
            for template in self.templates:
                param = template.param(path)
                if param is not None:
                    scope["route"] = template  # the route the access log names
                    scope["path_params"] = {template.name: param}
                    await self.fast(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            route = scope.get("route")
            if isinstance(route, _Template):
                response = await route.handler(request, scope["path_params"][route.name])
            else:
                response = await self.exact[scope["path"]](request)
        except CreditgateError as exc:
            response = render(request, exc.status, exc)
        except Exception:
            response = internal_error(request)
        await response(scope, receive, send)


def _template(path: str, handler: Handler) -> _Template:
    prefix, rest = path.split("{", 1)
    name, suffix = rest.split("}", 1)
    return _Template(path, name, prefix, suffix, handler)


def serve_first(app: FastAPI, routes: Mapping[str, Handler], wrap: Callable[[ASGIApp], ASGIApp]) -> None:
    """Put `routes` in front of `app`'s middleware stack (built on its first request)."""
    build = app.build_middleware_stack

    def build_with_fast_routes() -> ASGIApp:
        return FastPostRoutes(build(), routes, wrap)

    app.build_middleware_stack = build_with_fast_routes  # type: ignore[method-assign]
