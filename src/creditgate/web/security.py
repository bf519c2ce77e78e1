"""What every portal and console response carries: a Content-Security-Policy without inline
scripts, no framing, no referrer leaks; and the CSRF token every form posts back.

The CSRF token is an HMAC of the browser's session token (or, before sign-in, of a random
pre-session cookie), so it is bound to that session and needs no storage. The session token
itself lives only in an HttpOnly cookie a script cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditgate.errors import PermissionDenied

CSRF_FIELD = "csrf_token"
PRESESSION_COOKIE = "cg_pre"  # binds the sign-in form's token before there is a session
STRIPE_JS = "https://js.stripe.com"


def content_security_policy(*, stripe: bool) -> str:
    """Scripts only from this server (and Stripe.js in Stripe mode); no inline script or style."""
    script = "'self'" + (f" {STRIPE_JS}" if stripe else "")
    frame = f"{STRIPE_JS} https://hooks.stripe.com" if stripe else "'none'"
    connect = "'self'" + (" https://api.stripe.com" if stripe else "")
    return (
        f"default-src 'self'; script-src {script}; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self'; connect-src {connect}; frame-src {frame}; form-action 'self'; "
        "base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """ASGI middleware: the headers above on every response under the given path prefixes."""

    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...], stripe: bool) -> None:
        self.app = app
        self.exact = tuple(p.rstrip("/") for p in prefixes)  # whole segments: not /webhooks
        self.below = tuple(p + "/" for p in self.exact)
        self.headers = [
            (b"content-security-policy", content_security_policy(stripe=stripe).encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"x-content-type-options", b"nosniff"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if not (path in self.exact or path.startswith(self.below)):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _binding(request: Request) -> str | None:
    """The secret a CSRF token is derived from: the session token, else the pre-session one."""
    web = getattr(request.state, "web", None)
    if web is not None:
        return str(web.token)
    pre: str | None = getattr(request.state, "presession", None) or request.cookies.get(PRESESSION_COOKIE)
    return pre


def csrf_for(binding: str) -> str:
    return hmac.new(binding.encode(), b"creditgate-csrf", hashlib.sha256).hexdigest()


def csrf_field_value(request: Request) -> str:
    """The token for this page's forms. Without a session, a pre-session cookie is chosen
    now (`ensure_presession` sets it on the response)."""
    binding = _binding(request)
    if binding is None:
        binding = request.state.presession = secrets.token_urlsafe(32)
    return csrf_for(binding)


def ensure_presession(request: Request, response: Response) -> None:
    """Set the pre-session cookie a page just bound its sign-in form to."""
    chosen = getattr(request.state, "presession", None)
    if chosen and request.cookies.get(PRESESSION_COOKIE) != chosen:
        response.set_cookie(
            PRESESSION_COOKIE, chosen, httponly=True, samesite="lax", secure=is_https(request), path="/"
        )


def check_csrf(request: Request, presented: str | None) -> None:
    """PermissionDenied unless the posted token belongs to this browser's session."""
    binding = _binding(request)
    if not presented or binding is None or not hmac.compare_digest(presented, csrf_for(binding)):
        raise PermissionDenied(
            "This form was not sent from a page of this session (its security token is missing or "
            "out of date). Reload the page and try again."
        )


def is_https(request: Request) -> bool:
    """Whether the browser talks https to us (directly, or through the public URL's proxy)."""
    public = request.app.state.services.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")
