"""The four read calls: credit-balance, usage-history, invoice-history, invoice-preview."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.accounts.principal import Principal
from creditgate.api.auth import principal
from creditgate.api.cloudflare.common import BILLING, config_wire, int_param, ms_param, ok
from creditgate.api.state import Services, services
from creditgate.billing import invoices
from creditgate.billing import service as billing
from creditgate.billing.invoices import Invoice, month_bounds
from creditgate.clock import to_ms
from creditgate.errors import ValidationError
from creditgate.ledger import service as ledger
from creditgate.metering import service as metering
from creditgate.money import to_cents_number

router = APIRouter()
WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
CREATED_BY = {"manual": "user", "auto": "auto_topup", "statement": "system"}


def _seconds(moment: datetime) -> int:
    return to_ms(moment) // 1000


def pdf_url(svc: Services, invoice: Invoice) -> str:
    """An unguessable link to the invoice's PDF on this server (the key is per invoice)."""
    base = svc.settings.base_url.rstrip("/")
    return f"{base}/v1/billing/invoices/{invoice.id}/pdf?key={invoice.pdf_key}"


def invoice_wire(svc: Services, invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "amount_remaining": invoice.amount_remaining,
        "currency": invoice.currency,
        "status": invoice.status,
        "created": _seconds(invoice.created_at),
        "invoice_pdf": pdf_url(svc, invoice),
        "description": invoice.description,
        "auto_advance": False,
        "attempt_count": invoice.attempt_count,
        "attempted": invoice.attempt_count > 0,
        "created_by": CREATED_BY.get(invoice.origin, "system"),
        "invoice_origin": invoice.origin,
    }


@router.get(BILLING + "/credit-balance")
async def credit_balance(
    request: Request, account_id: str, caller: Principal = Depends(principal)
) -> Response:
    caller.require("read", account_id)
    svc = services(request)
    async with svc.db.read() as conn:
        account = await ledger.get_account(conn, account_id)
        profile = await billing.get_profile(conn, account_id)
        config = await billing.get_topup_config(conn, account_id)
    processor = svc.processor.name if svc.processor else None
    card = (
        profile
        if profile is not None and profile.processor == processor and profile.default_payment_method_id
        else None
    )
    return ok(
        {
            "balance": to_cents_number(int(account.balance)),
            "has_default_payment_method": card is not None,
            "payment_method": {"brand": card.brand, "last4": card.last4} if card else None,
            "topup_config": config_wire(config),
            "first_topup_success": bool(profile and profile.first_topup_success),
        }
    )


def usage_range(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """Defaults: the current UTC calendar month. A missing start is the first instant of the
    month holding `end`; a missing end is the end of the current month (or of start's month
    when that is later)."""
    month_end = month_bounds(now)[1]
    if end is None:
        end = month_end if start is None or start < month_end else month_bounds(start)[1]
    if start is None:
        start = month_bounds(end - timedelta(microseconds=1))[0]
    if start > end:
        raise ValidationError("start_time must not be after end_time", field="start_time")
    return start, end


@router.get(BILLING + "/usage-history")
async def usage_history(
    request: Request, account_id: str, caller: Principal = Depends(principal)
) -> Response:
    caller.require("read", account_id)
    svc = services(request)
    query = request.query_params
    window = query.get("value_grouping_window")
    if window not in WINDOWS:
        raise ValidationError(
            "value_grouping_window is required and must be day or hour", field="value_grouping_window"
        )
    start, end = usage_range(ms_param(query, "start_time"), ms_param(query, "end_time"), svc.clock())
    width = WINDOWS[window]
    async with svc.db.read() as conn:
        await ledger.get_account(conn, account_id)
        rows = (
            await metering.usage_buckets(conn, account_id, window, metering.bucket_start(start, window), end)
            if start < end
            else []
        )
    history = []
    for row in rows:
        begins = to_ms(row.bucket_start)
        history.append(
            {
                "id": f"mtrusg_{window}_{begins}",
                "aggregated_value": to_cents_number(int(row.cost)),
                "start_time": begins,
                "end_time": to_ms(row.bucket_start + width),
            }
        )
    return ok({"history": history})


@router.get(BILLING + "/invoice-history")
async def invoice_history(
    request: Request, account_id: str, caller: Principal = Depends(principal)
) -> Response:
    caller.require("read", account_id)
    svc = services(request)
    query = request.query_params
    kind = query.get("type", "all")
    page_no, per_page = int_param(query, "page", 1), int_param(query, "per_page", 20)
    async with svc.db.read() as conn:
        page = await invoices.list_invoices(conn, account_id, kind=kind, page=page_no, per_page=per_page)
    return ok(
        {
            "invoices": [invoice_wire(svc, inv) for inv in page.invoices],
            "pagination": {
                "has_more": page.has_more,
                "page": page.page,
                "per_page": page.per_page,
                "total_count": page.total_count,
            },
        }
    )


@router.get(BILLING + "/invoice-preview")
async def invoice_preview(
    request: Request, account_id: str, caller: Principal = Depends(principal)
) -> Response:
    caller.require("read", account_id)
    svc = services(request)
    async with svc.db.read() as conn:
        draft = await invoices.preview(conn, account_id, svc.clock())
    period = {"start": _seconds(draft.period_start), "end": _seconds(draft.period_end)}
    lines = []
    for line in draft.lines:
        tokens = f"{line.input_tokens:,} input tokens"
        if line.cached_tokens:
            tokens += f" ({line.cached_tokens:,} cached)"
        lines.append(
            {
                "amount": to_cents_number(line.cost),
                "currency": "usd",
                "description": f"{line.provider}/{line.model}: {line.events:,} "
                f"request{'' if line.events == 1 else 's'}, {tokens}, "
                f"{line.output_tokens:,} output tokens",
                "period": period,
                "pricing": {"unit_amount_decimal": line.unit_cost_cents},
                "quantity": line.events,
                "pretax_credit_amounts": [
                    {
                        "amount": to_cents_number(line.credit),
                        "type": "credit_balance_transaction",
                        "credit_balance_transaction": None,
                        "discount": None,
                    }
                ]
                if line.credit
                else [],
            }
        )
    due = to_cents_number(draft.due)
    return ok(
        {
            "id": draft.id,
            "amount_due": due,
            "amount_paid": 0,
            "amount_remaining": due,
            "currency": "usd",
            "invoice_lines": lines,
            "period_start": period["start"],
            "period_end": period["end"],
            "status": "draft",
            "subtotal": to_cents_number(draft.total),
            "total_pretax_credit_amount": to_cents_number(draft.credits),
        }
    )
