"""POST /v1/billing/teams/{team_id}/payment-method/default (contract 4.5): make one of the
team's saved cards the default, the card that top-ups through both APIs and auto top-up charge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.state import services
from creditgate.api.xai.billing import Empty
from creditgate.api.xai.openapi import SET_DEFAULT_BODY, doc
from creditgate.api.xai.protojson import STRING, F
from creditgate.api.xai.wire import TEAMS, read_message, render, team_access
from creditgate.errors import ValidationError
from creditgate.workflows import cards

router = APIRouter()


@dataclass
class SetDefaultPaymentMethodReq:
    payment_method_id: str = ""
    FIELDS: ClassVar[tuple[F, ...]] = (F("payment_method_id", STRING),)


@router.post(
    TEAMS + "/payment-method/default",
    **doc("Set the default payment method", body=SET_DEFAULT_BODY, response=Empty),
)
async def set_default_payment_method(request: Request, team_id: str) -> Response:
    await team_access(request, team_id, "write")
    body: SetDefaultPaymentMethodReq = await read_message(request, SetDefaultPaymentMethodReq)
    if not body.payment_method_id:
        raise ValidationError("paymentMethodId is required", field="paymentMethodId")
    if len(body.payment_method_id) > 100:
        raise ValidationError("paymentMethodId is not a saved payment method id", field="paymentMethodId")
    await cards.set_default_card(services(request), team_id, body.payment_method_id)
    return render(Empty())
