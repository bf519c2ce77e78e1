"""Operator endpoints for auto top-up, card-saving sessions, top-ups and their refunds, and
statements, under /admin/v1. `refund_topup` is shared with the CLI.

    GET    /accounts/{id}/auto-topup                   state, config, monthly cap, spend
    PUT    /accounts/{id}/auto-topup                   {amount, threshold, monthly_cap?}
    DELETE /accounts/{id}/auto-topup
    POST   /accounts/{id}/cards/setup                  a SetupIntent's client_secret
    GET    /accounts/{id}/topups[/{topup_id}]          top-ups with their refunds
    POST   /accounts/{id}/topups/{topup_id}/refund     {amount?, reason?}; Idempotency-Key
    POST   /accounts/{id}/invoices/{invoice_id}/mark-paid   a statement collected elsewhere
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.accounts import idempotency
from creditgate.api.admin import operator
from creditgate.api.responses import JSON, read_object
from creditgate.api.state import processor, services
from creditgate.billing import autotopup, cards, refunds, statements, topups
from creditgate.billing import service as billing
from creditgate.billing.refunds import Refund
from creditgate.billing.topups import Topup
from creditgate.db import Database
from creditgate.errors import Conflict, CreditgateError, ServiceUnavailable, ValidationError
from creditgate.ledger import service as ledger
from creditgate.payments.gateway import CardProcessor

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(operator)])


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def topup_view(topup: Topup, refund_list: list[Refund]) -> dict[str, Any]:
    return {
        "id": topup.id,
        "account_id": topup.account_id,
        "invoice_id": topup.invoice_id,
        "amount": topup.amount,
        "currency": topup.currency,
        "origin": topup.origin,
        "status": topup.status,
        "payment_id": topup.payment_id,
        "client_secret": topup.client_secret if topup.status == "pending" else None,
        "failure_code": topup.failure_code,
        "failure_message": topup.failure_message,
        "created_at": _iso(topup.created_at),
        "refunded": sum(r.amount for r in refund_list if r.status == "succeeded"),
        "refundable": refunds.refundable(topup, refund_list),
        "refunds": [refund_view(r) for r in refund_list],
    }


def refund_view(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "topup_id": refund.topup_id,
        "amount": refund.amount,
        "status": refund.status,
        "processor_refund_id": refund.processor_refund_id,
        "reason": refund.reason,
        "failure_message": refund.failure_message,
        "created_at": _iso(refund.created_at),
        "completed_at": _iso(refund.completed_at),
    }


async def refund_topup(
    db: Database,
    proc: CardProcessor,
    account_id: str,
    topup_id: str,
    *,
    amount: Any,
    reason: str | None,
    request_key: str | None,
    now: datetime,
) -> tuple[dict[str, Any], Refund | None]:
    """Refund a top-up (all that is left when `amount` is None): record the intent, ask the
    processor (idempotency key `refund:<row id>`), record the answer. Safe to repeat."""
    async with db.write() as conn:
        refund, topup = await refunds.begin_refund(
            conn, account_id, topup_id, amount=amount, reason=reason, request_key=request_key, now=now
        )
    if refund is not None and refund.status == "created":
        try:
            result = await proc.refund(str(topup.payment_id), refund.amount, refund.idempotency_key)
        except (Conflict, ValidationError) as exc:  # refused: nothing was refunded
            async with db.write() as conn:
                await refunds.fail_refund(conn, refund.id, exc.message, now)
            raise
        except CreditgateError:
            raise
        except Exception as exc:
            raise ServiceUnavailable(
                f"the card processor could not be reached; refund {refund.id} is recorded and will be "
                "completed under the same key: send the same request again"
            ) from exc
        async with db.write() as conn:
            refund = await refunds.record_refund(conn, refund.id, result, now)
    async with db.read() as conn:
        topup, refund_list = await refunds.topup_with_refunds(conn, account_id, topup_id)
    return topup_view(topup, refund_list), refund


def _state_view(state: autotopup.AutoTopupState) -> dict[str, Any]:
    config = state.config
    return {
        "state": state.state,
        "amount": config.amount,
        "threshold": config.threshold,
        "monthly_cap": config.monthly_cap,
        "spent_this_month": state.spent_this_month,
        "error": config.error,
        "disabled_reason": config.disabled_reason,
        "disabled_code": state.disabled_code,
        "last_failed_at": _iso(config.last_failed_at),
        "consecutive_failures": state.failures,
        "next_attempt_at": _iso(state.next_attempt_at),
        "pending_topup": topup_view(state.pending, []) if state.pending else None,
    }


@router.get("/accounts/{account_id}/auto-topup")
async def get_auto_topup(request: Request, account_id: str) -> Response:
    svc = services(request)
    async with svc.db.read() as conn:
        state = await autotopup.get_state(conn, account_id, svc.clock())
    return JSON(_state_view(state))


@router.put("/accounts/{account_id}/auto-topup")
async def put_auto_topup(request: Request, account_id: str) -> Response:
    """Set the config (re-enables auto top-up). `monthly_cap` in cents; null removes the cap;
    left out keeps the current one."""
    svc = services(request)
    body = await read_object(request, allowed={"amount", "threshold", "monthly_cap"})
    for name in ("amount", "threshold"):
        if body.get(name) is None:
            raise ValidationError(f"{name} is required", field=name)
    now = svc.clock()
    async with svc.db.write() as conn:
        await billing.set_topup_config(
            conn, account_id, amount=body["amount"], threshold=body["threshold"], now=now
        )
        if "monthly_cap" in body:
            await autotopup.set_monthly_cap(conn, account_id, body["monthly_cap"], now)
        state = await autotopup.get_state(conn, account_id, now)
    return JSON(_state_view(state))


@router.delete("/accounts/{account_id}/auto-topup")
async def delete_auto_topup(request: Request, account_id: str) -> Response:
    svc = services(request)
    async with svc.db.write() as conn:
        await ledger.lock(conn, [account_id])
        await billing.delete_topup_config(conn, account_id)
    return JSON({})


@router.post("/accounts/{account_id}/cards/setup")
async def start_card_setup(request: Request, account_id: str) -> Response:
    """Start a browser card-saving session (Stripe SetupIntent, usage off_session). Confirm it
    with Stripe.js (`confirmCardSetup(client_secret)`), then POST the resulting PaymentMethod
    to `/cards` (or let the `setup_intent.succeeded` webhook record it) to make it the default."""
    svc, proc = services(request), processor(request)
    async with svc.db.read() as conn:
        await ledger.get_account(conn, account_id)
        customer = await billing.customer_id(conn, account_id, proc.name)
    if customer is None:
        customer = await proc.create_customer(account_id, idempotency_key=f"customer:{account_id}")
        async with svc.db.write() as conn:
            await cards.record_customer(
                conn, account_id, processor=proc.name, customer=customer, now=svc.clock()
            )
    session = await proc.create_setup_session(customer)
    return JSON(
        {
            "setup_id": session.setup_id,
            "client_secret": session.client_secret,
            "customer_id": customer,
            "processor": proc.name,
        },
        status_code=201,
    )


@router.get("/accounts/{account_id}/topups")
async def list_topups(request: Request, account_id: str, limit: int = 50) -> Response:
    if not 1 <= limit <= 500:
        raise ValidationError("limit must be between 1 and 500", field="limit")
    async with services(request).db.read() as conn:
        await ledger.get_account(conn, account_id)
        found = await topups.list_topups(conn, account_id, limit=limit)
        views = [topup_view(t, await refunds.list_refunds(conn, t.id)) for t in found]
    return JSON({"topups": views})


@router.get("/accounts/{account_id}/topups/{topup_id}")
async def get_topup(request: Request, account_id: str, topup_id: str) -> Response:
    async with services(request).db.read() as conn:
        topup, refund_list = await refunds.topup_with_refunds(conn, account_id, topup_id)
    return JSON(topup_view(topup, refund_list))


@router.post("/accounts/{account_id}/topups/{topup_id}/refund")
async def refund(request: Request, account_id: str, topup_id: str) -> Response:
    """Refund a completed top-up and take its credit back out of the ledger. Without `amount`
    everything not yet refunded is refunded, so repeating the call refunds nothing more."""
    svc, proc = services(request), processor(request)
    body = await read_object(request, allowed={"amount", "reason"}) if await request.body() else {}
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise ValidationError("reason must be a string of at most 500 characters", field="reason")
    key = request.headers.get("idempotency-key")
    if key is not None:
        idempotency.check_key(key)
    view, made = await refund_topup(
        svc.db,
        proc,
        account_id,
        topup_id,
        amount=body.get("amount"),
        reason=reason,
        request_key=key,
        now=svc.clock(),
    )
    return JSON({"topup": view, "refund": refund_view(made) if made else None})


@router.post("/accounts/{account_id}/invoices/{invoice_id}/mark-paid")
async def mark_statement_paid(request: Request, account_id: str, invoice_id: str) -> Response:
    svc = services(request)
    async with svc.db.write() as conn:
        await statements.mark_paid(conn, account_id, invoice_id, svc.clock())
    return JSON({"invoice_id": invoice_id, "status": "paid"})
