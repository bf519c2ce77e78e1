"""Operator billing endpoints under /admin/v1: saved cards.

`POST /admin/v1/accounts/{id}/cards` takes `{"card": ...}` or `{"payment_method_id": ...}`:
a test card number on the sandbox, a PaymentMethod id (`pm_...`, e.g. from Stripe.js after a
SetupIntent, or `pm_card_visa` in test mode) with Stripe. The card becomes the default and
auto top-up is re-enabled."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.api.admin import operator
from creditgate.api.responses import JSON, read_object
from creditgate.api.schemas import billing as schema
from creditgate.api.schemas.common import operation
from creditgate.api.state import processor, services
from creditgate.errors import ValidationError
from creditgate.views import card_view
from creditgate.workflows import cards

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(operator)])


@router.post(
    "/accounts/{account_id}/cards",
    **operation(ok=schema.Card, status=201, body=schema.CardCreate, errors=[402, 404]),
)
async def add_card(request: Request, account_id: str) -> Response:
    svc, proc = services(request), processor(request)
    body = await read_object(request, allowed={"card", "payment_method_id"})
    if "card" in body and "payment_method_id" in body:
        raise ValidationError("give either card or payment_method_id", field="payment_method_id")
    given = body["payment_method_id"] if "payment_method_id" in body else body.get("card")
    card = await cards.save_card(svc, account_id, given)
    return JSON(card_view(card, proc.name), status_code=201)


@router.get("/accounts/{account_id}/cards", **operation(ok=schema.CardList, errors=[404]))
async def list_cards(request: Request, account_id: str) -> Response:
    svc, proc = services(request), processor(request)
    found = await cards.list_cards(svc, account_id)
    return JSON({"cards": [card_view(c, proc.name) for c in found]})
