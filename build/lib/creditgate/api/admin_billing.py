"""Operator billing endpoints under /admin/v1: saved cards. `save_card` is shared with the CLI.

`POST /admin/v1/accounts/{id}/cards` takes `{"card": ...}` or `{"payment_method_id": ...}`:
a test card number on the sandbox, a PaymentMethod id (`pm_...`, e.g. from Stripe.js after a
SetupIntent, or `pm_card_visa` in test mode) with Stripe. The card becomes the default and
auto top-up is re-enabled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.api.admin import operator
from creditgate.api.responses import JSON, read_object
from creditgate.api.state import processor, services
from creditgate.billing import cards
from creditgate.billing import service as billing
from creditgate.billing.service import Card
from creditgate.db import Database
from creditgate.errors import ValidationError
from creditgate.ledger import service as ledger
from creditgate.payments.gateway import CardProcessor

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(operator)])


async def save_card(db: Database, proc: CardProcessor, account_id: str, card: Any, now: datetime) -> Card:
    """Save a card on the account's processor customer (created on first use) and make it the
    default. The processor is called outside any transaction; the result is then recorded."""
    if not isinstance(card, str) or not 0 < len(card) <= 100:
        raise ValidationError("card must be a card number (sandbox) or a payment method id", field="card")
    async with db.read() as conn:
        await ledger.get_account(conn, account_id)
        customer = await billing.customer_id(conn, account_id, proc.name)
    if customer is None:
        customer = await proc.create_customer(account_id, idempotency_key=f"customer:{account_id}")
    saved = await proc.attach_card(customer, card)
    async with db.write() as conn:  # the new default card also turns auto top-up back on
        return await cards.card_saved(
            conn, account_id, processor=proc.name, customer=customer, card=saved, now=now
        )


def card_view(card: Card, processor_name: str) -> dict[str, Any]:
    return {
        "account_id": card.account_id,
        "payment_method_id": card.payment_method_id,
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "default": card.is_default,
        "processor": processor_name,
    }


@router.post("/accounts/{account_id}/cards")
async def add_card(request: Request, account_id: str) -> Response:
    svc, proc = services(request), processor(request)
    body = await read_object(request, allowed={"card", "payment_method_id"})
    if "card" in body and "payment_method_id" in body:
        raise ValidationError("give either card or payment_method_id", field="payment_method_id")
    given = body["payment_method_id"] if "payment_method_id" in body else body.get("card")
    card = await save_card(svc.db, proc, account_id, given, svc.clock())
    return JSON(card_view(card, proc.name), status_code=201)


@router.get("/accounts/{account_id}/cards")
async def list_cards(request: Request, account_id: str) -> Response:
    svc, proc = services(request), processor(request)
    async with svc.db.read() as conn:
        cards = await billing.list_cards(conn, account_id)
    return JSON({"cards": [card_view(c, proc.name) for c in cards]})
