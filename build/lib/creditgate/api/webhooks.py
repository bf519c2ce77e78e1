"""Incoming processor webhooks: `POST /webhooks/stripe`.

The signature is checked before anything is stored (a bad one is a 400 and changes nothing).
A verified event is stored once in the inbox and dispatched once to the billing handlers; a
duplicate is acknowledged with 200. If a handler fails the event is kept as failed and the
answer is 503, so Stripe sends it again (our own webhook_inbox job retries it as well).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.responses import JSON, MAX_BODY_BYTES
from creditgate.api.state import Services, services
from creditgate.billing import inbox
from creditgate.errors import NotFound, ValidationError
from creditgate.payments.gateway import CardProcessor, WebhookSignatureError

router = APIRouter(prefix="/webhooks")

PROCESSOR_KEY = "stripe_processor"


def stripe_processor(svc: Services) -> CardProcessor:
    """The app's Stripe processor: the configured one, or one injected in extras by tests."""
    found: CardProcessor | None = svc.extras.get(PROCESSOR_KEY)
    if found is not None:
        return found
    if svc.processor is None or svc.processor.name != "stripe":
        raise NotFound("Stripe webhooks are not enabled (set CREDITGATE_PAYMENTS=stripe)")
    return svc.processor


@router.post("/stripe")
async def stripe_webhook(request: Request) -> Response:
    svc = services(request)
    processor = stripe_processor(svc)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ValidationError(f"request body exceeds {MAX_BODY_BYTES} bytes", field="body")
    try:
        event = processor.parse_webhook(body, request.headers)
    except WebhookSignatureError as exc:
        raise ValidationError(str(exc), field="Stripe-Signature") from exc
    async with svc.db.write() as conn:
        outcome = await inbox.receive(conn, processor.name, event, svc.clock())
    if outcome == "failed":
        return JSON(
            {"error": {"type": "handler_failed", "message": "stored; it will be processed on retry"}},
            status_code=503,
            headers={"Retry-After": "60"},
        )
    return JSON({"received": True, "id": event.id, "type": event.type, "status": outcome})
