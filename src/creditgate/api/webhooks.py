"""Incoming processor webhooks: `POST /webhooks/stripe`.

The signature is checked before anything is stored (a bad one is a 400 and changes nothing).
A verified event is stored once in the inbox and dispatched once to the billing handlers; a
duplicate is acknowledged with 200. If a handler fails the event is kept as failed and the
answer is 503, so Stripe sends it again (our own webhook_inbox job retries it as well).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.responses import JSON, read_body
from creditgate.api.schemas import webhooks as schema
from creditgate.api.schemas.common import operation
from creditgate.api.state import services
from creditgate.workflows import webhooks_in

router = APIRouter(prefix="/webhooks")


@router.post(
    "/stripe",
    **operation(
        ok=schema.WebhookReceipt,
        body=schema.StripeEvent,
        auth=False,
        errors=[404, 413, 503],
        parameters=[
            {"name": "Stripe-Signature", "in": "header", "required": True, "schema": {"type": "string"}}
        ],
        summary="A Stripe event, signed with the endpoint secret (raw body)",
    ),
)
async def stripe_webhook(request: Request) -> Response:
    async def body() -> bytes:
        return await read_body(request)  # a 413 after at most MAX_BODY_BYTES

    received = await webhooks_in.receive_stripe(services(request), body, request.headers)
    if received.outcome == "failed":
        return JSON(
            {"error": {"type": "handler_failed", "message": "stored; it will be processed on retry"}},
            status_code=503,
            headers={"Retry-After": "60"},
        )
    event = received.event
    return JSON({"received": True, "id": event.id, "type": event.type, "status": received.outcome})
