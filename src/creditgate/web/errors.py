"""Errors under /portal and /console as pages: a clear message with its proper status, never
a stack trace; an ended session on a GET goes to the sign-in page instead."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from creditgate.errors import CreditgateError
from creditgate.web.sessions import AREAS, SignInRequired
from creditgate.web.templating import render

TITLES = {
    400: "That did not work",
    401: "Please sign in",
    402: "The payment did not go through",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    410: "This link no longer works",
    413: "Too large",
    500: "Something went wrong",
    503: "Try again shortly",
}


def error_page(request: Request, status: int, exc: CreditgateError) -> Response:
    """The renderer api.errors uses for these prefixes (wired in creditgate.server)."""
    if isinstance(exc, SignInRequired) and request.method in ("GET", "HEAD"):
        return RedirectResponse(exc.area.sign_in_path, status_code=303)
    area = next((a for a in AREAS if request.url.path.startswith(a.prefix)), AREAS[0])
    message = "No page here." if status == 404 and exc.code == "no_route" else exc.message
    if status >= 500 and exc.code == "internal_error":
        message = "An internal error happened; nothing more is shown here. Try again, or contact support."
    return render(
        request,
        "error.html",
        status=status,
        title=TITLES.get(status, "That did not work"),
        message=message,
        area=area,
    )
