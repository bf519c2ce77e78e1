"""GET /v1/billing/teams/{team_id}/postpaid/invoice/preview (contract 4.6, `GetAmountToPay`):
the current billing cycle computed live (billing.cycle), in cents, spend positive and credit
negative."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.state import services
from creditgate.api.xai.billing import BillingCycle, Line
from creditgate.api.xai.openapi import doc
from creditgate.api.xai.protojson import INT64, MESSAGE, F
from creditgate.api.xai.types import Cent
from creditgate.api.xai.wire import TEAMS, render, team_access
from creditgate.money import to_whole_cents
from creditgate.workflows import invoice_preview
from creditgate.workflows.invoice_preview import InvoicePreview

router = APIRouter()


@dataclass
class CoreInvoice:
    """The docs-only amountBeforeVat{Limited,Unlimited,LimitedAndUnlimited} are not emitted."""

    lines: list[Line] = field(default_factory=list)
    amount_before_vat: int = 0
    vat_cost: int = 0
    amount_after_vat: int = 0
    auto_credits_issued: int = 0
    default_credits_issued: int = 0
    total_with_corr: Cent | None = None
    prepaid_credits: Cent | None = None
    prepaid_credits_used: Cent | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("lines", MESSAGE, Line, repeated=True),
        F("amount_before_vat", INT64),
        F("vat_cost", INT64),
        F("amount_after_vat", INT64),
        F("auto_credits_issued", INT64),
        F("default_credits_issued", INT64),
        F("total_with_corr", MESSAGE, Cent),
        F("prepaid_credits", MESSAGE, Cent),
        F("prepaid_credits_used", MESSAGE, Cent),
    )


@dataclass
class GetAmountToPayResp:
    core_invoice: CoreInvoice | None = None
    effective_spending_limit: int = 0
    default_credits: int = 0
    billing_cycle: BillingCycle | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("core_invoice", MESSAGE, CoreInvoice),
        F("effective_spending_limit", INT64),
        F("default_credits", INT64),
        F("billing_cycle", MESSAGE, BillingCycle),
    )


def message(found: InvoicePreview) -> GetAmountToPayResp:
    current, postpaid = found.cycle, found.postpaid
    lines = [
        Line(line.cluster, line.description, line.unit_type, line.unit_price, line.units, line.cents)
        for line in current.lines
    ]
    core = CoreInvoice(
        lines=lines,
        amount_before_vat=postpaid.net,
        vat_cost=postpaid.tax,
        amount_after_vat=postpaid.gross,
        total_with_corr=Cent(current.total),
        prepaid_credits=Cent(-current.prepaid_credits),
        prepaid_credits_used=Cent(-current.prepaid_used),
    )
    return GetAmountToPayResp(
        core_invoice=core,
        effective_spending_limit=to_whole_cents(current.spending_limit),
        billing_cycle=BillingCycle(*current.cycle),
    )


@router.get(
    TEAMS + "/postpaid/invoice/preview",
    **doc("Postpaid invoice preview of the current cycle", response=GetAmountToPayResp),
)
async def preview(request: Request, team_id: str) -> Response:
    await team_access(request, team_id, "read")
    found = await invoice_preview.invoice_preview(services(request), team_id)
    return render(message(found))
