"""The customer billing portal (/portal) and the operator console (/console): server-rendered
HTML from the same workflows the APIs call, forms that work without JavaScript, nothing
loaded from elsewhere (docs/portal.md).

`install(app)` mounts the pages, the static files and the security headers; the composition
root (creditgate.server) calls it and routes errors under these prefixes to `error_page`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from creditgate.web import access, portal_controls, portal_pages, portal_payments
from creditgate.web import console as console_pages
from creditgate.web import usage as usage_pages
from creditgate.web.errors import error_page
from creditgate.web.security import SecurityHeaders
from creditgate.web.templating import STATIC_URL

PREFIXES = ("/portal", "/console", "/web")
__all__ = ["PREFIXES", "error_page", "install"]


def install(app: FastAPI) -> None:
    """Add the portal's routes, its static files and the headers every page carries."""
    stripe = app.state.services.settings.payments == "stripe"
    app.include_router(access.router)
    app.include_router(portal_pages.router)
    app.include_router(portal_payments.router)
    app.include_router(portal_controls.router)
    app.include_router(usage_pages.router)  # /portal/usage
    app.include_router(console_pages.router)  # /console
    app.mount(STATIC_URL, StaticFiles(packages=[("creditgate.web", "static")]), name="web-static")
    app.add_middleware(SecurityHeaders, prefixes=PREFIXES, stripe=stripe)
