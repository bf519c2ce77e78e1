"""Schemas of webhooks: outgoing endpoints and events (admin), the incoming processor inbox,
and the answer to a processor's webhook."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from creditgate.api.schemas.common import Request
from creditgate.notify.service import EVENT_TYPES, MAX_URL_LENGTH

EventType = Literal[
    "topup.succeeded",
    "topup.failed",
    "auto_topup.disabled",
    "balance.low",
    "spending_limit.reached",
    "invoice.finalized",
]
assert set(get_args(EventType)) == set(EVENT_TYPES)


class EndpointCreate(Request):
    url: Annotated[
        str,
        Field(
            max_length=MAX_URL_LENGTH,
            pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@:\[\]]+(:[0-9]{0,4})?([/?][^#]*)?$",
            description="An absolute http(s) URL without credentials or #fragment",
        ),
    ]
    description: Annotated[str, Field(max_length=200)] | None = None
    event_types: Annotated[list[EventType], Field(min_length=1)] | None = Field(
        default=None, description="The types to send; all when absent"
    )


class Endpoint(BaseModel):
    id: str
    url: str
    description: str | None
    event_types: list[str] | None
    created_at: str | None


class EndpointCreated(Endpoint):
    secret: str = Field(description="The signing secret, shown only here")


class EndpointList(BaseModel):
    endpoints: list[Endpoint]
    event_types: list[str]


class EndpointDeleted(BaseModel):
    deleted: str


class Attempt(BaseModel):
    id: Any
    delivery_id: Any
    endpoint_id: str | None
    attempt: int
    started_at: str | None
    duration_ms: int | None
    status_code: int | None
    succeeded: bool | None
    error: str | None


class Delivery(BaseModel):
    id: Any
    endpoint_id: str | None
    url: str | None
    status: str
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    finished_at: str | None


class DeliveryWithLog(Delivery):
    attempts_log: list[Attempt]


class Event(BaseModel):
    id: str
    account_id: str | None
    type: str
    created_at: str | None
    payload: Any
    deliveries: list[Delivery]


class EventDetail(Event):
    deliveries: list[DeliveryWithLog]  # type: ignore[assignment]


class EventList(BaseModel):
    events: list[Event]


class AttemptList(BaseModel):
    attempts: list[Attempt]


class Redelivered(BaseModel):
    event_id: str
    requeued: int


class InboxEvent(BaseModel):
    processor: str
    event_id: str
    type: str | None
    raw_type: str | None
    object_id: str | None
    payment_id: str | None
    status: str
    attempts: int
    error: str | None
    received_at: str
    processed_at: str | None
    next_attempt_at: str | None


class InboxList(BaseModel):
    events: list[InboxEvent]


class StripeEvent(BaseModel):
    """A Stripe event as Stripe sends it (verified against `Stripe-Signature` over the raw body)."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str


class WebhookReceipt(BaseModel):
    received: bool
    id: str
    type: str
    status: str
