"""The portal's money in: top-ups (with the sandbox's test cards or Stripe's card element,
and the 3-D Secure step) and saved payment methods."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from creditgate.billing.topups import MIN_TOPUP_CENTS
from creditgate.errors import PaymentFailed, ValidationError
from creditgate.ids import new_secret
from creditgate.web import flash
from creditgate.web.forms import change, in_dollars
from creditgate.web.sessions import WebSession, context, portal_session
from creditgate.web.templating import cents, render
from creditgate.workflows import cards, portal_reads, portal_topup, topup

router = APIRouter(prefix="/portal", include_in_schema=False)
PRESETS_CENTS = (1000, 2500, 5000, 10000)
SANDBOX_CARDS = (
    ("4242424242424242", "succeeds"),
    ("4000000000000341", "saves, then every charge is declined"),
    ("4000002500003155", "asks for 3-D Secure"),
    ("4000000000000002", "declined when saved"),
)


def _processor(request: Request) -> str | None:
    proc = context(request).processor
    return proc.name if proc else None


async def _top_up_page(
    request: Request,
    web: WebSession,
    *,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    ctx = context(request)
    return render(
        request,
        "portal/top_up.html",
        status=status,
        title="Top up",
        card=await portal_reads.default_card(ctx, web.account_id),
        presets=PRESETS_CENTS,
        minimum=MIN_TOPUP_CENTS,
        processor=_processor(request),
        sandbox_cards=SANDBOX_CARDS,
        request_key=new_secret(16),
        error=error,
        values=values or {},
    )


@router.get("/top-up")
async def top_up_form(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    return await _top_up_page(request, web)


@router.post("/top-up")
async def top_up(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    """Charge the picked (a preset button) or typed amount; a decline shows the processor's
    message with nothing credited; 3-D Secure goes to the top-up's own page."""
    form = await change(request, web)
    try:
        amount = (
            form.cents("preset", "the amount") if form.text("preset") else form.cents("amount", "the amount")
        )
        new_card = form.text("card_number", max_len=100) if _processor(request) == "sandbox" else None
        request_key = form.required("request_key", "the form's key", max_len=64)
        paid = await portal_topup.top_up(
            context(request), web.account_id, amount_cents=amount, new_card=new_card, request_key=request_key
        )
    except (ValidationError, PaymentFailed) as exc:
        kept = {k: v for k, v in form.fields.items() if k == "amount"}
        return await _top_up_page(request, web, status=exc.status, error=in_dollars(exc.message), values=kept)
    if paid.status == "completed":
        return flash.redirect("/portal", "ok", f"{cents(paid.amount)} was added to your balance.")
    return RedirectResponse(f"/portal/top-up/{paid.invoice_id}", status_code=303)


@router.get("/top-up/{invoice_id}")
async def top_up_status(
    request: Request, invoice_id: str, web: WebSession = Depends(portal_session)
) -> Response:
    """One top-up: paid, failed, or waiting for 3-D Secure (the step is shown here)."""
    ctx = context(request)
    error: str | None = None
    try:
        current = await topup.topup_status(ctx, web.account_id, invoice_id)
    except PaymentFailed as exc:
        error, current = exc.message, None
    settings = ctx.settings
    return render(
        request,
        "portal/top_up_status.html",
        title="Top-up",
        invoice_id=invoice_id,
        topup=current,
        error=error,
        processor=_processor(request),
        publishable_key=settings.stripe_publishable_key or "",
    )


@router.post("/top-up/{invoice_id}/authenticate")
async def authenticate(
    request: Request, invoice_id: str, web: WebSession = Depends(portal_session)
) -> Response:
    """The sandbox's 3-D Secure step: the cardholder completes or fails it."""
    form = await change(request, web)
    outcome = form.choice("outcome", "an outcome", ("succeed", "fail"))
    try:
        paid = await portal_topup.authenticate_sandbox(
            context(request), web.account_id, invoice_id, succeed=outcome == "succeed"
        )
    except PaymentFailed as exc:
        return flash.redirect("/portal/top-up", "error", exc.message)
    if paid.status == "completed":
        return flash.redirect("/portal", "ok", f"{cents(paid.amount)} was added to your balance.")
    return RedirectResponse(f"/portal/top-up/{invoice_id}", status_code=303)


async def _cards_page(
    request: Request, web: WebSession, *, status: int = 200, error: str | None = None
) -> Response:
    ctx = context(request)
    extra: dict[str, Any] = {}
    if _processor(request) == "stripe" and web.may_write and request.query_params.get("add") == "1":
        setup = await cards.start_card_setup(ctx, web.account_id)
        extra = {
            "client_secret": setup.client_secret,
            "publishable_key": ctx.settings.stripe_publishable_key or "",
        }
    return render(
        request,
        "portal/payment_methods.html",
        status=status,
        title="Payment methods",
        cards=await cards.list_cards(ctx, web.account_id),
        processor=_processor(request),
        sandbox_cards=SANDBOX_CARDS,
        error=error,
        client_secret=extra.get("client_secret"),
        publishable_key=extra.get("publishable_key", ""),
    )


@router.get("/payment-methods")
async def payment_methods(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    return await _cards_page(request, web)


@router.post("/payment-methods")
async def add_payment_method(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    """Save a card: a test card number (sandbox) or the payment method Stripe.js confirmed."""
    form = await change(request, web)
    try:
        card = form.required("card", "a card number", max_len=100)
        saved = await cards.save_card(context(request), web.account_id, card)
    except (ValidationError, PaymentFailed) as exc:
        return await _cards_page(request, web, status=exc.status, error=exc.message)
    return flash.redirect(
        "/portal/payment-methods",
        "ok",
        f"{saved.brand.title()} ending {saved.last4} was saved as your default card.",
    )


@router.post("/payment-methods/default")
async def make_default(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    form = await change(request, web)
    card = await cards.set_default_card(
        context(request), web.account_id, form.required("payment_method_id", "a card")
    )
    return flash.redirect(
        "/portal/payment-methods", "ok", f"{card.brand.title()} ending {card.last4} is now your default card."
    )


@router.post("/payment-methods/remove")
async def remove(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    form = await change(request, web)
    successor = await cards.remove_card(
        context(request), web.account_id, form.required("payment_method_id", "a card")
    )
    note = (
        f" {successor.brand.title()} ending {successor.last4} is now your default card." if successor else ""
    )
    return flash.redirect("/portal/payment-methods", "ok", "The card was removed." + note)
