"""Schemas of the gateway API: usage reports, and authorize / settle / void / get of holds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from creditgate.api.schemas.admin import ACCOUNT_ID
from creditgate.api.schemas.common import Request
from creditgate.metering.events import MAX_TIMESTAMP_MS, MAX_TOKENS, MIN_TIMESTAMP_MS

# A plain decimal from 0 to 999999.999999999 (leading zeros, "+", ".5" and "5." are read too)
USD = r"^\+?(0*[1-9][0-9]{0,5}|0+)(\.[0-9]{0,9}0*)?$|^\+?\.[0-9]{1,9}0*$"
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS)]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]


class UsageEvent(Request):
    """One model call. Each event is checked alone: a bad one is listed in `rejected`."""

    id: Text200
    account_id: Annotated[str, Field(pattern=ACCOUNT_ID)]
    model: Text200
    provider: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    cached_tokens: Tokens | None = None
    cost_usd: Annotated[str, Field(pattern=USD, description="USD decimal string, at most 1000000")] | None = (
        None
    )
    timestamp: (
        Annotated[int, Field(ge=MIN_TIMESTAMP_MS, le=MAX_TIMESTAMP_MS, description="Unix ms")] | None
    ) = None
    metadata: dict[str, Any] | None = Field(default=None, description="At most 4096 bytes of JSON")


class UsageBatch(Request):
    events: Annotated[list[UsageEvent], Field(max_length=1000)]


class Rejection(BaseModel):
    index: int
    error: str
    field: str | None


class UsageResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


class AuthorizeRequest(Request):
    """Send `estimated_cost_usd`, or token maximums for the catalog's worst case."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": kind}}}
                for name, kind in (
                    ("estimated_cost_usd", "string"),
                    ("max_input_tokens", "integer"),
                    ("max_output_tokens", "integer"),
                )
            ]
        },
    )

    account_id: Annotated[str, Field(pattern=ACCOUNT_ID)]
    request_id: Text200
    model: Text200
    provider: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    max_input_tokens: Tokens | None = None
    max_output_tokens: Tokens | None = None
    estimated_cost_usd: Annotated[str, Field(pattern=USD)] | None = None
    metadata: dict[str, Any] | None = None


class Remaining(BaseModel):
    credit_usd: str | None
    credit_cents: int | float | None
    spending_limit_usd: str | None
    spending_limit_cents: int | float | None


class Allowed(BaseModel):
    allowed: Literal[True]
    hold_id: str
    amount_usd: str
    amount_cents: int | float
    expires_at: str
    remaining: Remaining
    replayed: bool


class Refused(BaseModel):
    allowed: Literal[False]
    reason: str
    retry_after_ms: int | None = None


class Decision(RootModel[Allowed | Refused]):
    """`allowed` says which of the two shapes it is."""


class SettleRequest(Request):
    """The actual usage, in the usage-event shape; every field defaults from the hold."""

    id: Text200 | None = None
    account_id: Annotated[str, Field(pattern=ACCOUNT_ID)] | None = None
    model: Text200 | None = None
    provider: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    cached_tokens: Tokens | None = None
    cost_usd: Annotated[str, Field(pattern=USD)] | None = None
    timestamp: Annotated[int, Field(ge=MIN_TIMESTAMP_MS, le=MAX_TIMESTAMP_MS)] | None = None
    metadata: dict[str, Any] | None = None


class Hold(BaseModel):
    hold_id: str
    account_id: str
    request_id: str
    status: str
    amount_usd: str
    amount_cents: int | float
    created_at: str
    expires_at: str
    closed_at: str | None
    captured_usd: str | None
    captured_cents: int | float | None
    released_usd: str | None
    overrun_usd: str
    overrun_cents: int | float
    late: bool
    event_id: str | None


class Settled(Hold):
    replayed: bool
