"""POST topup and POST topup/status: charge the saved card, credit once, report the state.

The work is workflows.topup's. A request that repeats an earlier one is matched to it through
its Idempotency-Key, or, when the SDK says it is a retry (`x-stainless-retry-count` > 0),
through the dedupe window; a still unsettled earlier top-up is resumed under the same
processor idempotency key: one charge at most. A first attempt without a key is a new
purchase, so a deliberate second top-up of the same amount is charged.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.accounts import idempotency
from creditgate.accounts.principal import Principal
from creditgate.api.auth import principal
from creditgate.api.cloudflare.common import BILLING, ok, require_keys
from creditgate.api.responses import read_object
from creditgate.api.schemas import cloudflare as schema
from creditgate.api.schemas.common import idempotency_header, operation
from creditgate.api.state import services
from creditgate.errors import ValidationError
from creditgate.workflows import topup as workflow

router = APIRouter()


def is_retry(request: Request) -> bool:
    """Whether the client says this request repeats an earlier attempt: the official SDKs send
    `x-stainless-retry-count` (0 on the first attempt) on every request. Anything but a
    positive whole number is a first attempt."""
    raw = request.headers.get("x-stainless-retry-count", "").strip()
    return raw.isascii() and raw.isdigit() and raw.strip("0") != ""


@router.post(
    BILLING + "/topup",
    **operation(
        ok=schema.TopupAnswer,
        body=schema.TopupCreate,
        wire="cloudflare",
        errors=[402, 404, 409, 503],
        parameters=[idempotency_header()],
    ),
)
async def create_topup(request: Request, account_id: str, caller: Principal = Depends(principal)) -> Response:
    caller.require("write", account_id)
    svc = services(request)
    body = await read_object(request, allowed={"amount", "payment_method_id"})
    require_keys(body, ("amount",))
    key = request.headers.get("idempotency-key")
    if key is not None:
        idempotency.check_key(key)
    receipt = await workflow.create_topup(
        svc,
        workflow.TopupRequest(
            account_id,
            amount=body["amount"],
            payment_method_id=body.get("payment_method_id"),
            request_key=key,
            retry=is_retry(request),
        ),
    )
    topup, card = receipt.topup, receipt.card
    result: dict[str, Any] = {
        "client_secret": topup.client_secret if topup.status == "pending" else None,
        "onboarding": receipt.onboarded,
        "payment_intent_id": topup.invoice_id,
        "brand": card.brand,
        "last4": card.last4,
        "status": "completed" if topup.status == "completed" else "pending",
        "amount": topup.amount,
    }
    return ok(result)


@router.post(
    BILLING + "/topup/status",
    **operation(
        ok=schema.TopupStatusAnswer, body=schema.TopupStatusRequest, wire="cloudflare", errors=[402, 404]
    ),
)
async def topup_status(request: Request, account_id: str, caller: Principal = Depends(principal)) -> Response:
    caller.require("write", account_id)
    svc = services(request)
    body = await read_object(request, allowed={"payment_intent_id"})
    require_keys(body, ("payment_intent_id",))
    invoice_id = body["payment_intent_id"]
    if not isinstance(invoice_id, str) or not 0 < len(invoice_id) <= 100:
        raise ValidationError(
            "payment_intent_id must be an invoice id such as in_...", field="payment_intent_id"
        )
    topup = await workflow.topup_status(svc, account_id, invoice_id)
    return ok(
        {"payment_intent_id": invoice_id, "status": "completed" if topup.status == "completed" else "pending"}
    )
