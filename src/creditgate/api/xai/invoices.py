"""GET /v1/billing/teams/{team_id}/invoices (contract 4.3): top-up invoices (`prepaid`) and
monthly statements (`monthly`), newest first, filtered by one of billingCycle, since or
invoiceIds."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from creditgate.api.state import services
from creditgate.api.xai.billing import (
    BillingCycle,
    ChargerAttempt,
    Empty,
    InvoiceBundle,
    InvoiceStatus,
    Line,
    ListInvoicesResp,
    MonthlyInvoiceBundle,
)
from creditgate.api.xai.openapi import doc
from creditgate.api.xai.types import Cent
from creditgate.api.xai.wire import TEAMS, render, team_access
from creditgate.billing import documents, tax
from creditgate.errors import ValidationError
from creditgate.money import to_whole_cents
from creditgate.workflows import xai_reads
from creditgate.workflows.context import Context

router = APIRouter()
STATUSES = {
    "draft": InvoiceStatus.PENDING,
    "open": InvoiceStatus.PENDING,
    "paid": InvoiceStatus.PAID,
    "void": InvoiceStatus.WILL_NEVER_BE_CHARGED,
    "uncollectible": InvoiceStatus.FAILED,
}


def _param(query: QueryParams, group: str, name: str) -> list[str]:
    snake = "".join("_" + ch.lower() if ch.isupper() else ch for ch in group)
    return query.getlist(f"{group}.{name}") + query.getlist(f"{snake}.{name}")


def _cycle(query: QueryParams, group: str) -> tuple[int, int] | None:
    year, month = _param(query, group, "year"), _param(query, group, "month")
    if not year and not month:
        return None
    try:
        cycle = int(year[-1]), int(month[-1])
    except (ValueError, IndexError):
        raise ValidationError(f"{group}.year and {group}.month must both be integers", field=group) from None
    if not 1 <= cycle[1] <= 12 or not 1 <= cycle[0] <= 9999:
        raise ValidationError(f"{group}.month must be 1 to 12 and {group}.year 1 to 9999", field=group)
    return cycle


def parse_filter(query: QueryParams) -> tuple[str | None, tuple[int, int] | None, list[str] | None]:
    """The one filter of ListInvoicesReq's oneof: ("billingCycle" | "since" | None, cycle, ids)."""
    exact, since = _cycle(query, "billingCycle"), _cycle(query, "since")
    ids = _param(query, "invoiceIds", "invoiceIds")
    given = [
        name for name, value in (("billingCycle", exact), ("since", since), ("invoiceIds", ids)) if value
    ]
    if len(given) > 1:
        raise ValidationError(f"only one filter may be given, not {' and '.join(given)}", field=given[1])
    if exact is not None:
        return "billingCycle", exact, None
    if since is not None:
        return "since", since, None
    return None, None, ids or None


def bundle(ctx: Context, team_id: str, view: xai_reads.InvoiceView) -> InvoiceBundle:
    listed, invoice = view.listed, view.listed.invoice
    split = tax.split(invoice.amount_due, documents.seller_of(invoice, ctx.seller).tax_rate_bps)
    if listed.statement is None:  # a top-up: its attempts are counted, the last one settled it
        attempts = [
            ChargerAttempt(
                i, invoice.status == "paid" and i == invoice.attempt_count - 1, listed.payment_method_id or ""
            )
            for i in range(invoice.attempt_count)
        ]
    else:  # a monthly invoice: each card charge is recorded (billing.statement_charges)
        attempts = [
            ChargerAttempt(a.ticket, a.status == "succeeded", a.payment_method_id)
            for a in listed.statement.attempts
        ]
    lines = [
        Line(line.cluster, line.description, line.unit_type, line.unit_price, line.units, line.cents)
        for line in view.lines
    ]
    message = InvoiceBundle(
        team_id=team_id,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        create_time=invoice.created_at,
        invoice_status=STATUSES.get(invoice.status, InvoiceStatus.INVALID),
        first_desired_next_cycle_ts=(
            listed.statement.first_charge_at(invoice.created_at) if listed.statement else None
        ),
        charger_attempts=attempts,
        lines=lines,
        subtotal=split.net,
        tax=split.tax,
        total=split.gross,
        invoice_pdf_asset_key_suffix=f"v1/billing/invoices/{invoice.id}/pdf?key={invoice.pdf_key}",
    )
    if listed.statement is None:
        message.prepaid = Empty()
    else:
        message.monthly = MonthlyInvoiceBundle(
            billing_cycle=BillingCycle(*listed.cycle),
            default_credits_issued=Cent(0),
            auto_credits_issued=Cent(0),
            prepaid_tokens_to_spend=Cent(-to_whole_cents(listed.statement.credits)),
        )
    return message


@router.get(TEAMS + "/invoices", **doc("List invoices", response=ListInvoicesResp))
async def list_invoices(request: Request, team_id: str) -> Response:
    await team_access(request, team_id, "read")
    kind, cycle, ids = parse_filter(request.query_params)
    svc = services(request)
    views = await xai_reads.team_invoices(
        svc,
        team_id,
        invoice_ids=ids,
        cycle=cycle if kind == "billingCycle" else None,
        since=cycle if kind == "since" else None,
    )
    return render(ListInvoicesResp([bundle(svc, team_id, view) for view in views]))
