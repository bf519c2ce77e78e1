"""GET /v1/billing/teams/{team_id}/prepaid/balance (contract 4.9): the prepaid balance and
its changes, credit negative and spend positive, in whole cents."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.state import services
from creditgate.api.xai.billing import (
    ChangeOrigin,
    ListPrepaidBalanceChangesResp,
    PaymentProcessor,
    PrepaidBalanceChange,
    ProcessorKind,
    TopUpStatus,
)
from creditgate.api.xai.openapi import doc
from creditgate.api.xai.types import Cent
from creditgate.api.xai.wire import TEAMS, render, team_access
from creditgate.billing.balance_view import BalanceChange
from creditgate.money import to_whole_cents
from creditgate.workflows import xai_reads

router = APIRouter()
ORIGINS = {
    "purchase": ChangeOrigin.PURCHASE,
    "auto_purchase": ChangeOrigin.AUTO_PURCHASE,
    "spend": ChangeOrigin.SPEND,
    "refund": ChangeOrigin.REFUND,
    "manual": ChangeOrigin.MANUAL,
}
STATUSES = {
    "to_charge": TopUpStatus.TO_CHARGE,
    "failed_to_charge": TopUpStatus.FAILED_TO_CHARGE,
    "succeeded": TopUpStatus.SUCCEEDED,
}


def credit_cents(units: int) -> Cent:
    """Ledger units (credit positive) as xAI's Cent (credit negative), rounded to the cent."""
    return Cent(-to_whole_cents(units))


def change(team_id: str, item: BalanceChange, processor: str | None) -> PrepaidBalanceChange:
    origin = ORIGINS[item.origin]
    kind = None
    if origin in (ChangeOrigin.PURCHASE, ChangeOrigin.AUTO_PURCHASE, ChangeOrigin.REFUND):
        kind = ProcessorKind.STRIPE if processor == "stripe" else ProcessorKind.EXTERNAL
    elif origin == ChangeOrigin.MANUAL:
        kind = ProcessorKind.MANUAL
    return PrepaidBalanceChange(
        team_id=team_id,
        change_origin=origin,
        topup_status=STATUSES[item.topup_status] if item.topup_status else None,
        amount=credit_cents(item.amount),
        invoice_id=item.invoice_id,
        invoice_number=item.invoice_number,
        create_time=item.created_at,
        spend_bp_key_year=item.period[0] if item.period else None,
        spend_bp_key_month=item.period[1] if item.period else None,
        create_ts=item.created_at,
        payment_processor=PaymentProcessor(kind) if kind is not None else None,
    )


@router.get(
    TEAMS + "/prepaid/balance",
    **doc("Prepaid balance and its changes", response=ListPrepaidBalanceChangesResp),
)
async def prepaid_balance(request: Request, team_id: str) -> Response:
    await team_access(request, team_id, "read")
    found = await xai_reads.prepaid_balance(services(request), team_id)
    changes = [change(team_id, item, found.processor) for item in found.view.changes]
    return render(ListPrepaidBalanceChangesResp(changes, credit_cents(found.view.balance)))
