"""The card-processor interface. Billing talks only to this; sandbox.py and stripe.py
implement it. Amounts here are integer cents (the processor's unit), never ledger units."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from creditgate.jsonvalues import contains_nul

ChargeStatus = Literal["succeeded", "requires_action", "failed"]


@dataclass(frozen=True)
class SavedCard:
    """A card saved on a customer: the processor's PaymentMethod id plus display facts."""

    payment_method_id: str
    brand: str
    last4: str
    exp_month: int | None = None
    exp_year: int | None = None


@dataclass(frozen=True)
class ChargeRequest:
    """One charge. `idempotency_key` is derived from our own row id (e.g. the top-up id), so a
    retried call can never charge twice."""

    customer_id: str
    payment_method_id: str
    amount_cents: int
    currency: str
    off_session: bool
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class ChargeResult:
    """The processor's answer. A decline is status "failed" with a code and message (not an
    exception); "requires_action" carries the client_secret for 3-D Secure."""

    payment_id: str
    status: ChargeStatus
    client_secret: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    payment_id: str
    amount_cents: int
    status: str


@dataclass(frozen=True)
class SetupSession:
    """A card-saving session for a browser (Stripe SetupIntent)."""

    setup_id: str
    client_secret: str


@dataclass(frozen=True)
class ProcessorEvent:
    """A verified webhook, normalised. `type` is one of: payment.succeeded, payment.failed,
    payment.requires_action, refund.succeeded, card.saved, invoice.paid, other.

    The optional trailing fields are facts a handler may need without knowing the processor:
    the id of the object the event is about (pi_, re_, seti_, in_...), its customer, its
    amount in cents (for refund.succeeded: the amount refunded by this refund), the saved
    PaymentMethod (card.saved) and the decline code (payment.failed)."""

    id: str
    type: str
    payment_id: str | None
    metadata: Mapping[str, str]
    failure_message: str | None = None
    raw_type: str = ""
    object_id: str | None = None
    customer_id: str | None = None
    amount_cents: int | None = None
    payment_method_id: str | None = None
    failure_code: str | None = None


class WebhookSignatureError(Exception):
    """The webhook's signature did not verify; answer 400 and process nothing."""


class WebhookEventError(WebhookSignatureError):
    """A verified webhook whose body is not an event (not a JSON object, or without a usable
    id or type); answer 400 naming the body and store nothing."""


MAX_EVENT_ID = 255  # webhook_inbox.event_id


@dataclass(frozen=True)
class EventEnvelope:
    """The parts every processor's webhook event has: its id, its type and its data object."""

    id: str
    type: str
    data: Mapping[str, Any]


def event_envelope(payload: bytes) -> EventEnvelope:
    """The envelope of a verified webhook body, or WebhookEventError: the inbox stores an
    event under its id, so an event without one (or a body that is no event) is refused."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WebhookEventError(f"the webhook body is not an event (not JSON: {exc})") from exc
    if not isinstance(event, dict):
        raise WebhookEventError("the webhook body is not an event (a JSON object)")
    if contains_nul(event):
        raise WebhookEventError("the webhook event holds the NUL character (\\u0000)")
    event_id, raw_type, data = event.get("id"), event.get("type"), event.get("data")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_EVENT_ID or not event_id.isprintable():
        raise WebhookEventError(
            f"the webhook event needs an id: a string of 1-{MAX_EVENT_ID} printable characters"
        )
    if not isinstance(raw_type, str) or not raw_type or not raw_type.isprintable():
        raise WebhookEventError("the webhook event needs a type: a non-empty string")
    if data is not None and not isinstance(data, dict):
        raise WebhookEventError("the webhook event's data must be a JSON object")
    return EventEnvelope(event_id, raw_type, data or {})


class ProcessorUnavailable(Exception):
    """The processor could not be reached or answered with a server error: the outcome of the
    call is unknown. Retry later with the same idempotency key (never a new one)."""


class CardProcessor(Protocol):
    """What billing needs from a card processor."""

    name: str

    async def create_customer(self, account_id: str, idempotency_key: str) -> str:
        """Create the processor-side customer for an account; returns its id."""
        ...

    async def attach_card(self, customer_id: str, card: str) -> SavedCard:
        """Save a card on the customer. `card` is a PaymentMethod id (pm_...) or, on the
        sandbox, a test card number. A card refused at save time raises PaymentFailed."""
        ...

    async def create_setup_session(self, customer_id: str) -> SetupSession:
        """Start a browser card-saving flow."""
        ...

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge a saved card (on or off session)."""
        ...

    async def payment_status(self, payment_id: str) -> ChargeResult:
        """Re-read a payment (for a pending 3-D Secure top-up)."""
        ...

    async def refund(self, payment_id: str, amount_cents: int, idempotency_key: str) -> RefundResult:
        """Refund all or part of a succeeded payment."""
        ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProcessorEvent:
        """Verify and normalise an incoming webhook; WebhookSignatureError if it fails."""
        ...
