"""GET /v1/billing/teams/{team_id}/payment-method: the team's saved cards (contract 4.4)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.state import services
from creditgate.api.xai.billing import ListPaymentMethodsResp
from creditgate.api.xai.openapi import doc
from creditgate.api.xai.types import CardDetails, PaymentMethod
from creditgate.api.xai.wire import TEAMS, render, team_access
from creditgate.billing.rows import Card
from creditgate.workflows import xai_reads

router = APIRouter()


def method(card: Card) -> PaymentMethod:
    """A saved card; creditgate keeps no billing details per card (billingInfo null)."""
    details = CardDetails(card.brand, card.exp_month or 0, card.exp_year or 0, card.last4)
    return PaymentMethod(payment_method_id=card.payment_method_id, card_details=details, payment_type="card")


@router.get(TEAMS + "/payment-method", **doc("List payment methods", response=ListPaymentMethodsResp))
async def list_payment_methods(request: Request, team_id: str) -> Response:
    await team_access(request, team_id, "read")
    cards = await xai_reads.payment_methods(services(request), team_id)
    return render(ListPaymentMethodsResp([method(card) for card in cards]))
