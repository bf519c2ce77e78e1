"""POST topup and POST topup/status: charge the saved card, credit once, report the state.

The charge happens between two commits (see billing.topups). A resent request (the SDK
retries POSTs without an idempotency key) is matched to the earlier top-up and, if that one
is still unsettled, resumes it under the same processor idempotency key: one charge at most.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.accounts import idempotency
from creditgate.accounts.principal import Principal
from creditgate.api.auth import principal
from creditgate.api.cloudflare.common import BILLING, ok, require_keys
from creditgate.api.responses import read_object
from creditgate.api.state import Services, processor, services
from creditgate.billing import service as billing
from creditgate.billing import topups
from creditgate.billing.topups import Topup
from creditgate.errors import CreditgateError, PaymentFailed, ServiceUnavailable, ValidationError
from creditgate.payments.gateway import CardProcessor

log = logging.getLogger("creditgate.topup")
router = APIRouter()


async def charge_and_record(svc: Services, proc: CardProcessor, topup: Topup) -> Topup:
    """Charge an unsettled top-up (on session) and record the answer in a new transaction."""
    try:
        result = await proc.charge(topup.charge_request(off_session=False))
    except CreditgateError:
        raise
    except Exception as exc:
        log.exception("charge for top-up %s failed to reach the processor", topup.id)
        raise ServiceUnavailable(
            f"the card processor could not be reached; top-up {topup.invoice_id} is not settled and "
            "will never be charged twice: check it with topup/status or send the same request again"
        ) from exc
    async with svc.db.write() as conn:
        return await topups.record_charge(conn, topup.id, result, svc.clock())


async def settle(svc: Services, proc: CardProcessor, topup: Topup) -> Topup:
    """Bring an unsettled top-up up to date: charge one that never reached the processor (same
    idempotency key, so at most one charge), or re-read one waiting for 3-D Secure."""
    if topup.status == "created":
        return await charge_and_record(svc, proc, topup)
    if topup.status == "pending" and topup.payment_id:
        try:
            result = await proc.payment_status(topup.payment_id)
        except Exception:
            log.exception("could not re-read payment %s of top-up %s", topup.payment_id, topup.id)
            return topup
        if result.status != "requires_action":
            async with svc.db.write() as conn:
                return await topups.record_charge(conn, topup.id, result, svc.clock())
    return topup


def _raise_if_failed(topup: Topup) -> None:
    if topup.status == "failed":
        code = topup.failure_code or "payment_failed"
        raise PaymentFailed(
            f"{topup.failure_message or 'The payment failed.'} ({code}). Nothing was credited; "
            f"invoice {topup.invoice_id} is marked uncollectible.",
            decline_code=code,
        )


@router.post(BILLING + "/topup")
async def create_topup(request: Request, account_id: str, caller: Principal = Depends(principal)) -> Response:
    caller.require("write", account_id)
    svc, proc = services(request), processor(request)
    body = await read_object(request, allowed={"amount", "payment_method_id"})
    require_keys(body, ("amount",))
    key = request.headers.get("idempotency-key")
    if key is not None:
        idempotency.check_key(key)
    async with svc.db.write() as conn:
        topup, _created = await topups.begin_topup(
            conn,
            account_id,
            amount=body["amount"],
            payment_method_id=body.get("payment_method_id"),
            now=svc.clock(),
            processor=proc.name,
            request_key=key,
        )
    topup = await settle(svc, proc, topup)
    _raise_if_failed(topup)
    async with svc.db.read() as conn:
        card = await billing.get_card(conn, account_id, topup.payment_method_id)
        onboarded = await topups.onboarded_before(conn, topup)
    result: dict[str, Any] = {
        "client_secret": topup.client_secret if topup.status == "pending" else None,
        "onboarding": onboarded,
        "payment_intent_id": topup.invoice_id,
        "brand": card.brand,
        "last4": card.last4,
        "status": "completed" if topup.status == "completed" else "pending",
        "amount": topup.amount,
    }
    return ok(result)


@router.post(BILLING + "/topup/status")
async def topup_status(request: Request, account_id: str, caller: Principal = Depends(principal)) -> Response:
    caller.require("write", account_id)
    svc, proc = services(request), processor(request)
    body = await read_object(request, allowed={"payment_intent_id"})
    require_keys(body, ("payment_intent_id",))
    invoice_id = body["payment_intent_id"]
    if not isinstance(invoice_id, str) or not 0 < len(invoice_id) <= 100:
        raise ValidationError(
            "payment_intent_id must be an invoice id such as in_...", field="payment_intent_id"
        )
    async with svc.db.read() as conn:
        topup = await topups.topup_for_invoice(conn, account_id, invoice_id)
    with contextlib.suppress(ServiceUnavailable):  # the processor is unreachable: still pending
        topup = await settle(svc, proc, topup)
    _raise_if_failed(topup)
    return ok(
        {"payment_intent_id": invoice_id, "status": "completed" if topup.status == "completed" else "pending"}
    )
