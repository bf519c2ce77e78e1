"""Operator endpoints for auto top-up, card-saving sessions, top-ups and their refunds, and
statements, under /admin/v1. Each route parses, calls one workflow and renders.

    GET    /accounts/{id}/auto-topup                   state, config, monthly cap, spend
    PUT    /accounts/{id}/auto-topup                   {amount, threshold, monthly_cap?}
    DELETE /accounts/{id}/auto-topup
    POST   /accounts/{id}/cards/setup                  a SetupIntent's client_secret
    POST   /accounts/{id}/topups                       {amount, payment_method_id?}; Idempotency-Key
    GET    /accounts/{id}/topups[/{topup_id}]          top-ups with their refunds
    POST   /accounts/{id}/topups/{topup_id}/refund     {amount?, reason?}; Idempotency-Key
    POST   /accounts/{id}/invoices/{invoice_id}/mark-paid   a statement collected elsewhere
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from creditgate.accounts import idempotency
from creditgate.api.admin import operator
from creditgate.api.responses import JSON, read_body, read_object
from creditgate.api.schemas import billing as schema
from creditgate.api.schemas.common import Empty, idempotency_header, operation
from creditgate.api.state import services
from creditgate.errors import ValidationError
from creditgate.views import auto_topup_view, refund_view, topup_view
from creditgate.workflows import auto_topup, cards, statements, topup
from creditgate.workflows import refund as refunds

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(operator)])
LIMIT_500 = Query(50, json_schema_extra={"minimum": 1, "maximum": 500})  # checked in the route


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None:
        idempotency.check_key(key)
    return key


@router.get("/accounts/{account_id}/auto-topup", **operation(ok=schema.AutoTopupState, errors=[404]))
async def get_auto_topup(request: Request, account_id: str) -> Response:
    return JSON(auto_topup_view(await auto_topup.get_state(services(request), account_id)))


@router.put(
    "/accounts/{account_id}/auto-topup",
    **operation(ok=schema.AutoTopupState, body=schema.AutoTopupSet, errors=[404]),
)
async def put_auto_topup(request: Request, account_id: str) -> Response:
    """Set the config (re-enables auto top-up). `monthly_cap` in cents; null removes the cap;
    left out keeps the current one."""
    body = await read_object(request, allowed={"amount", "threshold", "monthly_cap"})
    for name in ("amount", "threshold"):
        if body.get(name) is None:
            raise ValidationError(f"{name} is required", field=name)
    state = await auto_topup.set_config(
        services(request),
        account_id,
        amount=body["amount"],
        threshold=body["threshold"],
        change_cap="monthly_cap" in body,
        monthly_cap=body.get("monthly_cap"),
    )
    return JSON(auto_topup_view(state))


@router.delete("/accounts/{account_id}/auto-topup", **operation(ok=Empty, errors=[404]))
async def delete_auto_topup(request: Request, account_id: str) -> Response:
    await auto_topup.delete_config(services(request), account_id)
    return JSON({})


@router.post(
    "/accounts/{account_id}/cards/setup", **operation(ok=schema.CardSetup, status=201, errors=[404, 503])
)
async def start_card_setup(request: Request, account_id: str) -> Response:
    """Start a browser card-saving session (Stripe SetupIntent, usage off_session). Confirm it
    with Stripe.js (`confirmCardSetup(client_secret)`), then POST the resulting PaymentMethod
    to `/cards` (or let the `setup_intent.succeeded` webhook record it) to make it the default."""
    session = await cards.start_card_setup(services(request), account_id)
    return JSON(
        {
            "setup_id": session.setup_id,
            "client_secret": session.client_secret,
            "customer_id": session.customer_id,
            "processor": session.processor,
        },
        status_code=201,
    )


@router.post(
    "/accounts/{account_id}/topups",
    **operation(
        ok=schema.Topup,
        status=201,
        body=schema.TopupCreate,
        errors=[402, 404, 409, 503],
        parameters=[idempotency_header()],
    ),
)
async def create_topup(request: Request, account_id: str) -> Response:
    """Charge the account's saved card (or `payment_method_id`) for `amount` cents of credit,
    as the Cloudflare `POST topup` does. With an Idempotency-Key, the same key is the same
    top-up; without one, every call is a new purchase. Declined -> 402; 3-D Secure -> 201
    with status pending and the client_secret."""
    body = await read_object(request, allowed={"amount", "payment_method_id"})
    if body.get("amount") is None:
        raise ValidationError("amount is required", field="amount")
    receipt = await topup.create_topup(
        services(request),
        topup.TopupRequest(
            account_id,
            amount=body["amount"],
            payment_method_id=body.get("payment_method_id"),
            request_key=_idempotency_key(request),
        ),
    )
    return JSON(topup_view(receipt.topup, []), status_code=201)


@router.get("/accounts/{account_id}/topups", **operation(ok=schema.TopupList, errors=[404]))
async def list_topups(request: Request, account_id: str, limit: int = LIMIT_500) -> Response:
    if not 1 <= limit <= 500:
        raise ValidationError("limit must be between 1 and 500", field="limit")
    found = await refunds.list_topups(services(request), account_id, limit=limit)
    return JSON({"topups": [topup_view(t.topup, t.refunds) for t in found]})


@router.get("/accounts/{account_id}/topups/{topup_id}", **operation(ok=schema.Topup, errors=[404]))
async def get_topup(request: Request, account_id: str, topup_id: str) -> Response:
    found = await refunds.get_topup(services(request), account_id, topup_id)
    return JSON(topup_view(found.topup, found.refunds))


@router.post(
    "/accounts/{account_id}/topups/{topup_id}/refund",
    **operation(
        ok=schema.RefundResult,
        body=schema.RefundCreate,
        body_required=False,
        errors=[402, 404, 409, 503],
        parameters=[idempotency_header()],
    ),
)
async def refund(request: Request, account_id: str, topup_id: str) -> Response:
    """Refund a completed top-up and take its credit back out of the ledger. Without `amount`
    everything not yet refunded is refunded, so repeating the call refunds nothing more."""
    body = await read_object(request, allowed={"amount", "reason"}) if await read_body(request) else {}
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise ValidationError("reason must be a string of at most 500 characters", field="reason")
    done = await refunds.refund_topup(
        services(request),
        account_id,
        topup_id,
        amount=body.get("amount"),
        reason=reason,
        request_key=_idempotency_key(request),
    )
    made = refund_view(done.made) if done.made else None
    return JSON({"topup": topup_view(done.topup, done.refunds), "refund": made})


@router.post(
    "/accounts/{account_id}/invoices/{invoice_id}/mark-paid",
    **operation(ok=schema.StatementPaid, errors=[404, 409]),
)
async def mark_statement_paid(request: Request, account_id: str, invoice_id: str) -> Response:
    await statements.mark_paid(services(request), account_id, invoice_id)
    return JSON({"invoice_id": invoice_id, "status": "paid"})
