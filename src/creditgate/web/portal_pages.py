"""The customer portal's read pages and billing info under /portal: one account per session,
every read and write through the workflows the APIs use."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.billing.reference_lists import TAX_ID_TYPES
from creditgate.errors import ValidationError
from creditgate.web import flash
from creditgate.web.forms import Form, change
from creditgate.web.sessions import WebSession, context, portal_session
from creditgate.web.templating import render
from creditgate.workflows import billing_info, portal_reads

router = APIRouter(prefix="/portal", include_in_schema=False)
ADDRESS = ("line1", "line2", "city", "state", "postal_code", "country")


@router.get("")
async def home(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    """The balance: available credit, holds, promotional grants and the postpaid allowance."""
    balance = await portal_reads.balance(context(request), web.account_id)
    return render(request, "portal/balance.html", title="Balance", balance=balance)


@router.get("/invoices")
async def invoices(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    """Invoices with their status and PDF, newest first, and the upcoming invoice."""
    raw = request.query_params.get("page", "1")
    page = int(raw) if raw.isdigit() and 0 < int(raw) < 10**6 else 1
    found = await portal_reads.invoices_and_upcoming(context(request), web.account_id, page=page)
    return render(
        request, "portal/invoices.html", title="Invoices", listed=found.page, upcoming=found.upcoming
    )


def _info_fields(form: Form) -> dict[str, Any]:
    """The form as billing_info.set_billing_info takes it (empty means not given)."""
    return {
        "name": form.text("name", max_len=400),
        "email": form.text("email", max_len=400),
        "address": {name: form.text(name, max_len=400) for name in ADDRESS},
        "tax_id_type": form.text("tax_id_type", max_len=64),
        "tax_number": form.text("tax_number", max_len=128),
    }


async def _info_page(
    request: Request,
    web: WebSession,
    *,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    info = await billing_info.get_info(context(request), web.account_id)
    if values is None:
        values = {}
        if info is not None:
            values = {"name": info.name, "email": info.email or "", "tax_id_type": info.tax_id_type or ""}
            values |= {"tax_number": info.tax_number or ""}
            values |= {name: getattr(info.address, name) or "" for name in ADDRESS}
    return render(
        request,
        "portal/billing_info.html",
        status=status,
        title="Billing info",
        values=values,
        error=error,
        tax_id_types=sorted(TAX_ID_TYPES),
    )


@router.get("/billing-info")
async def billing_info_page(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    return await _info_page(request, web)


@router.post("/billing-info")
async def save_billing_info(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    """Replace the name, address and tax id printed on invoices; bad input changes nothing."""
    form = await change(request, web)
    try:
        await billing_info.set_billing_info(context(request), web.account_id, _info_fields(form))
    except ValidationError as exc:
        return await _info_page(request, web, status=exc.status, error=exc.message, values=form.fields)
    return flash.redirect(
        "/portal/billing-info", "ok", "Billing info saved. It appears on invoices from now on."
    )
