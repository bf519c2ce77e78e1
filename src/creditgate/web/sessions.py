"""Who is signed in to the portal or the console: the session cookie, resolved through
workflows.portal, as a FastAPI dependency. Portal cookies are scoped to /portal and console
cookies to /console, HttpOnly, SameSite=Lax and Secure under https."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from fastapi.responses import Response

from creditgate.accounts.portal import Session
from creditgate.errors import AuthenticationError, PermissionDenied
from creditgate.web.security import is_https
from creditgate.workflows import accounts, portal
from creditgate.workflows.context import Context


@dataclass(frozen=True)
class Area:
    """The portal (one account per session) or the console (the operator)."""

    name: str
    prefix: str
    cookie: str
    operator: bool

    @property
    def sign_in_path(self) -> str:
        return self.prefix + "/sign-in"


PORTAL = Area("portal", "/portal", "cg_portal", operator=False)
CONSOLE = Area("console", "/console", "cg_console", operator=True)
AREAS = (PORTAL, CONSOLE)


class SignInRequired(AuthenticationError):
    """No live session for this area: pages redirect to its sign-in page."""

    def __init__(self, area: Area) -> None:
        super().__init__("Your session has ended. Sign in again.")
        self.area = area


@dataclass(frozen=True)
class WebSession:
    """The signed-in browser of one area. `token` is the cookie's secret (it binds CSRF)."""

    area: Area
    token: str
    session: Session
    label: str = ""  # who is signed in, as the header shows it (the account's name)

    @property
    def account_id(self) -> str:
        """The one account a portal session may see (the console has none)."""
        if self.session.account_id is None:
            raise PermissionDenied("this session is not for an account")
        return self.session.account_id

    @property
    def may_write(self) -> bool:
        return self.session.may_write

    @property
    def scope(self) -> str:
        return self.session.scope

    @property
    def expires_at(self) -> datetime:
        return self.session.expires_at

    def require_write(self) -> None:
        """PermissionDenied for a read-only session."""
        if not self.may_write:
            raise PermissionDenied("This session is read-only: it can look at everything but change nothing.")


def context(request: Request) -> Context:
    ctx: Context = request.app.state.services
    return ctx


async def _resolve(request: Request, area: Area) -> WebSession:
    token = request.cookies.get(area.cookie)
    found = await portal.current_session(context(request), token)
    if token is None or found is None or (found.scope == "operator") != area.operator:
        raise SignInRequired(area)
    label = "Operator"
    if found.account_id is not None:
        label = (await accounts.get_account(context(request), found.account_id)).name
    web = WebSession(area, token, found, label)
    request.state.web = web
    if found.account_id:
        request.state.account_id = found.account_id  # for the access log
    return web


async def portal_session(request: Request) -> WebSession:
    """FastAPI dependency: the portal session (one account), or a redirect to sign in."""
    return await _resolve(request, PORTAL)


async def operator_session(request: Request) -> WebSession:
    """FastAPI dependency: the console's operator session, or a redirect to sign in."""
    return await _resolve(request, CONSOLE)


def set_session_cookie(
    request: Request, response: Response, area: Area, opened: portal.OpenedSession
) -> None:
    max_age = max(0, round((opened.session.expires_at - context(request).clock()).total_seconds()))
    response.set_cookie(
        area.cookie,
        opened.token,
        max_age=max_age,
        path=area.prefix,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_session_cookie(response: Response, area: Area) -> None:
    response.delete_cookie(area.cookie, path=area.prefix)
