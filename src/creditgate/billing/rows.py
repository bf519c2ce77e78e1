"""The typed rows billing's concepts hand each other and the adapters (frozen dataclasses).

The repositories build them from SQL rows; nothing outside a repository sees an untyped row.
Money here is whole cents unless a field says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from creditgate.billing.parties import Parties
from creditgate.payments.gateway import ChargeRequest


@dataclass(frozen=True)
class Topup:
    id: str
    account_id: str
    invoice_id: str
    amount: int  # cents
    currency: str
    origin: str  # manual | auto
    status: str  # created | pending | completed | failed
    customer_id: str
    payment_method_id: str
    payment_id: str | None
    client_secret: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: datetime

    def charge_request(self, *, off_session: bool) -> ChargeRequest:
        """The processor call for this top-up; its idempotency key is derived from our id."""
        return ChargeRequest(
            customer_id=self.customer_id,
            payment_method_id=self.payment_method_id,
            amount_cents=self.amount,
            currency=self.currency,
            off_session=off_session,
            idempotency_key=f"topup:{self.id}",
            metadata={"account_id": self.account_id, "topup_id": self.id, "invoice_id": self.invoice_id},
            description=f"creditgate credit top-up {self.invoice_id}",
        )


@dataclass(frozen=True)
class Refund:
    id: str
    account_id: str
    topup_id: str
    amount: int  # cents
    status: str  # created | pending | succeeded | failed
    processor_refund_id: str | None
    reason: str | None
    failure_message: str | None
    created_at: datetime
    completed_at: datetime | None

    @property
    def idempotency_key(self) -> str:
        return f"refund:{self.id}"


@dataclass(frozen=True)
class Profile:
    """An account's processor-side customer and default card."""

    account_id: str
    processor: str
    customer_id: str | None
    default_payment_method_id: str | None
    brand: str | None
    last4: str | None
    first_topup_success: bool


@dataclass(frozen=True)
class Card:
    account_id: str
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None
    is_default: bool


@dataclass(frozen=True)
class TopupConfig:
    """Auto top-up settings in cents; every field is None when none is configured."""

    amount: int | None = None
    threshold: int | None = None
    error: str | None = None
    disabled_reason: str | None = None
    last_failed_at: datetime | None = None
    monthly_cap: int | None = None  # cents of auto top-ups per UTC month; None = no cap


@dataclass(frozen=True)
class AutoTopupRow:
    """An account's auto top-up row: its settings and its state-machine columns."""

    account_id: str
    amount: int  # cents
    threshold: int  # cents
    error: str | None
    disabled_reason: str | None
    last_failed_at: datetime | None
    monthly_cap: int | None
    failures: int
    next_attempt_at: datetime | None
    pending_topup_id: str | None
    disabled_code: str | None
    low_since: datetime | None
    balance: int  # ledger units: the account's balance when the row was read

    @property
    def config(self) -> TopupConfig:
        return TopupConfig(
            self.amount,
            self.threshold,
            self.error,
            self.disabled_reason,
            self.last_failed_at,
            self.monthly_cap,
        )


@dataclass(frozen=True)
class Invoice:
    id: str
    account_id: str
    number: str
    status: str  # draft | open | paid | uncollectible | void
    origin: str  # manual | auto | statement
    currency: str
    amount_due: int  # cents
    amount_paid: int  # cents
    description: str | None
    attempt_count: int
    pdf_key: str
    created_at: datetime
    paid_at: datetime | None
    parties: Parties | None = None  # seller, tax and buyer at issue (None: issued before 0011)

    @property
    def amount_remaining(self) -> int:
        return 0 if self.status in ("paid", "void") else self.amount_due - self.amount_paid


@dataclass(frozen=True)
class Statement:
    """One closed month of one account (ledger units)."""

    account_id: str
    period_start: datetime
    period_end: datetime
    invoice_id: str | None
    mode: str
    total: int
    late: int
    credits: int
    due: int
    lines: list[dict[str, Any]]
    created_at: datetime
    usage: int | None = None  # ledger usage posted in the month; None if closed before 0013


@dataclass(frozen=True)
class InboxEvent:
    """A stored processor event as the inbox keeps it."""

    processor: str
    event_id: str
    type: str
    raw_type: str
    object_id: str | None
    payment_id: str | None
    status: str  # received | processed | ignored | failed
    attempts: int
    error: str | None
    received_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime | None
