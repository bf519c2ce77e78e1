"""The portal's controls on spending: auto top-up and the spending limit, through the same
workflows as the Cloudflare `topup/config` and `spending-limit` routes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.errors import NotFound, PermissionDenied, ValidationError
from creditgate.web import flash
from creditgate.web.forms import change, in_dollars
from creditgate.web.sessions import WebSession, context, portal_session
from creditgate.web.templating import render
from creditgate.workflows import auto_topup, window_limits

router = APIRouter(prefix="/portal", include_in_schema=False)
PERIODS = (("daily", "Day"), ("weekly", "Week"), ("monthly", "Month"))
STRATEGIES = (
    ("fixed", "Fixed", "the calendar day, week (from Monday) or month, in UTC"),
    ("sliding", "Sliding", "the last 24 hours, 7 days or 30 days, up to now"),
)


async def _auto_page(
    request: Request,
    web: WebSession,
    *,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    state = await auto_topup.get_state(context(request), web.account_id)
    return render(
        request,
        "portal/auto_top_up.html",
        status=status,
        title="Auto top-up",
        state=state,
        error=error,
        values=values,
    )


@router.get("/auto-top-up")
async def auto_top_up(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    return await _auto_page(request, web)


@router.post("/auto-top-up")
async def set_auto_top_up(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    form = await change(request, web)
    try:
        amount = form.cents("amount", "the amount")
        threshold = form.cents("threshold", "the threshold")
        cap = form.optional_cents("monthly_cap", "the monthly cap")
        await auto_topup.set_config(
            context(request),
            web.account_id,
            amount=amount,
            threshold=threshold,
            change_cap=True,
            monthly_cap=cap,
        )
    except (ValidationError, NotFound) as exc:
        return await _auto_page(
            request, web, status=exc.status, error=in_dollars(exc.message), values=form.fields
        )
    return flash.redirect("/portal/auto-top-up", "ok", "Auto top-up is on.")


@router.post("/auto-top-up/off")
async def auto_top_up_off(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    await change(request, web)
    await auto_topup.delete_config(context(request), web.account_id)
    return flash.redirect("/portal/auto-top-up", "ok", "Auto top-up is off.")


async def _limit_page(
    request: Request,
    web: WebSession,
    *,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    current = await window_limits.limit_status(context(request), web.account_id)
    return render(
        request,
        "portal/spending_limit.html",
        status=status,
        title="Spending limit",
        current=current,
        periods=PERIODS,
        strategies=STRATEGIES,
        error=error,
        values=values,
    )


@router.get("/spending-limit")
async def limit_page(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    return await _limit_page(request, web)


@router.post("/spending-limit")
async def set_limit(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    form = await change(request, web)
    try:
        amount = form.cents("amount", "the limit")
        duration = form.choice("duration", "a period", tuple(p for p, _ in PERIODS))
        strategy = form.choice("strategy", "a window", tuple(s for s, _, _ in STRATEGIES))
        await window_limits.set_limit(
            context(request), web.account_id, amount=amount, duration=duration, strategy=strategy
        )
    except (ValidationError, PermissionDenied) as exc:
        return await _limit_page(
            request, web, status=exc.status, error=in_dollars(exc.message), values=form.fields
        )
    return flash.redirect("/portal/spending-limit", "ok", "The spending limit is saved.")


@router.post("/spending-limit/remove")
async def remove_limit(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    await change(request, web)
    await window_limits.delete_limit(context(request), web.account_id)
    return flash.redirect("/portal/spending-limit", "ok", "The spending limit is removed.")
