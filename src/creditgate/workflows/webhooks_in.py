"""Incoming processor webhooks: verify the signature, store the event once in the inbox and
dispatch it to the handlers the Context carries (billing's)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from creditgate.billing import inbox
from creditgate.errors import NotFound, ValidationError
from creditgate.payments.gateway import (
    CardProcessor,
    ProcessorEvent,
    WebhookEventError,
    WebhookSignatureError,
)
from creditgate.workflows.context import Context


@dataclass(frozen=True)
class Received:
    event: ProcessorEvent
    outcome: str  # processed | ignored | duplicate | failed (kept, retried later)


def stripe_processor(ctx: Context) -> CardProcessor:
    """The process's Stripe processor; NotFound when another one is configured."""
    if ctx.processor is None or ctx.processor.name != "stripe":
        raise NotFound("Stripe webhooks are not enabled (set CREDITGATE_PAYMENTS=stripe)")
    return ctx.processor


async def receive_stripe(
    ctx: Context, read_body: Callable[[], Awaitable[bytes]], headers: Mapping[str, str]
) -> Received:
    """Verify (a bad signature is a 400 that stores nothing), store once, dispatch once. The
    body is read (by the adapter's size-limited reader) only once Stripe webhooks are known on."""
    processor = stripe_processor(ctx)
    body = await read_body()
    try:
        event = processor.parse_webhook(body, headers)
    except WebhookEventError as exc:  # signed, but not an event we can store
        raise ValidationError(str(exc), field="body") from exc
    except WebhookSignatureError as exc:
        raise ValidationError(str(exc), field="Stripe-Signature") from exc
    async with ctx.db.write() as conn:
        outcome = await inbox.receive(conn, processor.name, event, ctx.clock(), ctx.webhook_handlers)
    return Received(event, outcome)


async def retry_failed(ctx: Context) -> int:
    """Dispatch again the stored events whose handler failed and are due for a retry."""
    async with ctx.db.write() as conn:
        return await inbox.retry_due(conn, ctx.clock(), ctx.webhook_handlers)
