"""Schemas of the Cloudflare AI Gateway billing API (contract: cloudflare-billing.md): every
answer sits in Cloudflare's envelope; amounts are cents."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from creditgate.api.schemas.common import Empty, Request, cloudflare_envelope
from creditgate.billing.service import MAX_TOPUP_CENTS, MIN_THRESHOLD_CENTS, MIN_TOPUP_CENTS

MAX_MS = 253_370_764_799_999
Cents = Annotated[int | float, Field(description="Cents")]


class TopupCreate(Request):
    amount: Annotated[int, Field(ge=MIN_TOPUP_CENTS, le=MAX_TOPUP_CENTS, description="Cents")]
    payment_method_id: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="A saved card; the default card if absent"
    )


class TopupResult(BaseModel):
    client_secret: str | None
    onboarding: bool
    payment_intent_id: str
    brand: str | None
    last4: str | None
    status: Literal["completed", "pending"]
    amount: int


class TopupStatusRequest(Request):
    payment_intent_id: Annotated[
        str, Field(min_length=1, max_length=100, description="An invoice id, in_...")
    ]


class TopupStatus(BaseModel):
    payment_intent_id: str
    status: Literal["completed", "pending"]


class TopupConfigSet(Request):
    amount: Annotated[int, Field(ge=MIN_TOPUP_CENTS, le=MAX_TOPUP_CENTS)]
    threshold: Annotated[int, Field(ge=MIN_THRESHOLD_CENTS, le=MAX_TOPUP_CENTS)]


class TopupConfigSaved(BaseModel):
    amount: int
    threshold: int


class TopupConfig(BaseModel):
    amount: int | None
    threshold: int | None
    disabledReason: str | None
    error: str | None
    lastFailedAt: int | None


class SpendingLimitSet(Request):
    amount: Annotated[int, Field(ge=100, le=MAX_TOPUP_CENTS, description="Cents")]
    duration: Literal["daily", "weekly", "monthly"]
    strategy: Literal["fixed", "sliding"]


class SpendingLimitConfig(BaseModel):
    amount: Cents | None
    duration: str | None
    strategy: str | None


class SpendingLimit(BaseModel):
    enabled: bool
    config: SpendingLimitConfig


class PaymentMethod(BaseModel):
    brand: str | None
    last4: str | None


class CreditBalance(BaseModel):
    balance: Cents
    has_default_payment_method: bool
    payment_method: PaymentMethod | None
    topup_config: TopupConfig
    first_topup_success: bool


class UsageBucket(BaseModel):
    id: str
    aggregated_value: Cents
    start_time: int
    end_time: int


class UsageHistory(BaseModel):
    history: list[UsageBucket]


class Invoice(BaseModel):
    id: str
    number: str | None
    amount_due: int
    amount_paid: int
    amount_remaining: int
    currency: str
    status: str
    created: int
    invoice_pdf: str
    description: str | None
    auto_advance: bool
    attempt_count: int
    attempted: bool
    created_by: str
    invoice_origin: str


class Pagination(BaseModel):
    has_more: bool
    page: int
    per_page: int
    total_count: int


class InvoiceHistory(BaseModel):
    invoices: list[Invoice]
    pagination: Pagination


class Period(BaseModel):
    start: int
    end: int


class Pricing(BaseModel):
    unit_amount_decimal: str | float | int | None


class CreditAmount(BaseModel):
    amount: Cents
    type: str
    credit_balance_transaction: None
    discount: None


class InvoiceLine(BaseModel):
    amount: Cents
    currency: str
    description: str
    period: Period
    pricing: Pricing
    quantity: int
    pretax_credit_amounts: list[CreditAmount]


class InvoicePreview(BaseModel):
    id: str
    amount_due: Cents
    amount_paid: int
    amount_remaining: Cents
    currency: str
    invoice_lines: list[InvoiceLine]
    period_start: int
    period_end: int
    status: str
    subtotal: Cents
    total_pretax_credit_amount: Cents


TopupAnswer = cloudflare_envelope("TopupAnswer", TopupResult)
TopupStatusAnswer = cloudflare_envelope("TopupStatusAnswer", TopupStatus)
TopupConfigAnswer = cloudflare_envelope("TopupConfigAnswer", TopupConfig)
TopupConfigSavedAnswer = cloudflare_envelope("TopupConfigSavedAnswer", TopupConfigSaved)
SpendingLimitAnswer = cloudflare_envelope("SpendingLimitAnswer", SpendingLimit)
CreditBalanceAnswer = cloudflare_envelope("CreditBalanceAnswer", CreditBalance)
UsageHistoryAnswer = cloudflare_envelope("UsageHistoryAnswer", UsageHistory)
InvoiceHistoryAnswer = cloudflare_envelope("InvoiceHistoryAnswer", InvoiceHistory)
InvoicePreviewAnswer = cloudflare_envelope("InvoicePreviewAnswer", InvoicePreview)
EmptyAnswer = cloudflare_envelope("EmptyAnswer", Empty)

USAGE_HISTORY_QUERY: list[dict[str, Any]] = [
    {
        "name": "value_grouping_window",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "enum": ["day", "hour"]},
    },
    *(
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": "Unix milliseconds; empty means absent",
            "schema": {
                "anyOf": [
                    {"type": "number", "minimum": 0, "maximum": MAX_MS},
                    {"type": "string", "enum": [""]},
                ]
            },
        }
        for name in ("start_time", "end_time")
    ),
]
INVOICE_HISTORY_QUERY: list[dict[str, Any]] = [
    {
        "name": "type",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["all", "auto", "manual"]},
    },
    {
        "name": "page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 999_999_999},
    },
    {
        "name": "per_page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
    },
]
