"""Flash messages: a short note carried across a POST-redirect-GET in a cookie, shown once
(as escaped text) by the next page."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

COOKIE = "cg_flash"
KINDS = ("ok", "error", "info")


@dataclass(frozen=True)
class Flash:
    kind: str
    text: str


def add(response: Response, kind: str, text: str) -> None:
    """Show `text` on the next page this browser renders."""
    raw = json.dumps([kind if kind in KINDS else "info", text[:1000]]).encode()
    value = base64.urlsafe_b64encode(raw).decode()
    response.set_cookie(COOKIE, value, httponly=True, samesite="lax", path="/")


def pop(request: Request) -> list[Flash]:
    """The waiting message (the caller clears the cookie on its response)."""
    value = request.cookies.get(COOKIE)
    if not value:
        return []
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, TypeError):
        return []
    if not isinstance(kind, str) or not isinstance(text, str):
        return []
    return [Flash(kind if kind in KINDS else "info", text)]


def clear(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")


def redirect(path: str, kind: str, text: str) -> Response:
    """POST-redirect-GET: a 303 to `path` that shows `text` there once."""
    response = RedirectResponse(path, status_code=303)
    add(response, kind, text)
    return response
