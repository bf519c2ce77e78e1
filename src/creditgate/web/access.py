"""The ways in, for both areas: open a one-time portal link, sign in with a token, sign out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from creditgate.errors import CreditgateError
from creditgate.web import flash
from creditgate.web.forms import posted
from creditgate.web.security import ensure_presession
from creditgate.web.sessions import (
    AREAS,
    PORTAL,
    Area,
    WebSession,
    clear_session_cookie,
    context,
    operator_session,
    portal_session,
    set_session_cookie,
)
from creditgate.web.templating import render
from creditgate.workflows import portal

router = APIRouter(include_in_schema=False)


@router.get(portal.LINK_PATH + "{link_token}")
async def open_link(request: Request, link_token: str) -> Response:
    """Spend the link and start the account's session (a clear 410 page when it cannot)."""
    opened = await portal.open_link(context(request), link_token)
    response = RedirectResponse(PORTAL.prefix, status_code=303)
    set_session_cookie(request, response, PORTAL, opened)
    return response


def _sign_in_page(request: Request, area: Area, *, status: int = 200, error: str | None = None) -> Response:
    response = render(request, "sign_in.html", status=status, title="Sign in", area=area, error=error)
    ensure_presession(request, response)
    return response


def _add_sign_in_routes(area: Area) -> None:
    async def page(request: Request) -> Response:
        return _sign_in_page(request, area)

    async def submit(request: Request) -> Response:
        form = await posted(request)
        try:
            opened = await portal.sign_in(
                context(request), form.fields.get("token", ""), operator=area.operator
            )
        except CreditgateError as exc:
            return _sign_in_page(request, area, status=exc.status, error=exc.message)
        response = RedirectResponse(area.prefix, status_code=303)
        set_session_cookie(request, response, area, opened)
        return response

    async def sign_out(request: Request, web: WebSession) -> Response:
        await posted(request)
        await portal.sign_out(context(request), web.token)
        response = RedirectResponse(area.sign_in_path, status_code=303)
        clear_session_cookie(response, area)
        flash.add(response, "info", "You are signed out.")
        return response

    dependency = operator_session if area.operator else portal_session

    async def sign_out_route(request: Request, web: WebSession = Depends(dependency)) -> Response:
        return await sign_out(request, web)

    router.add_api_route(area.sign_in_path, page, methods=["GET"])
    router.add_api_route(area.sign_in_path, submit, methods=["POST"])
    router.add_api_route(area.prefix + "/sign-out", sign_out_route, methods=["POST"])


for _area in AREAS:
    _add_sign_in_routes(_area)
