"""prod_mc_billing messages (xai/management_api/v1/billing.proto) served in phase 1."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import ClassVar

from creditgate.api.xai.protojson import BOOL, ENUM, INT32, INT64, MESSAGE, STRING, TIMESTAMP, F, rename
from creditgate.api.xai.types import BillingInfo, Cent, PaymentMethod


@dataclass
class GetBillingInfoResp:
    billing_info: BillingInfo | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (F("billing_info", MESSAGE, BillingInfo),)


@dataclass
class SetBillingInfoReq:
    billing_info: BillingInfo | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (F("billing_info", MESSAGE, BillingInfo),)


@dataclass
class Empty:
    FIELDS: ClassVar[tuple[F, ...]] = ()


@dataclass
class PendingPaymentMethod:
    ach_microdeposit_hosted_verification_url: str = ""
    FIELDS: ClassVar[tuple[F, ...]] = (F("ach_microdeposit_hosted_verification_url", STRING),)


@dataclass
class ListPaymentMethodsResp:
    payment_methods: list[PaymentMethod] = field(default_factory=list)
    pending_payment_method: PendingPaymentMethod | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("payment_methods", MESSAGE, PaymentMethod, repeated=True),
        F("pending_payment_method", MESSAGE, PendingPaymentMethod),
    )


@dataclass
class Line:
    cluster_name: str = ""
    description: str = ""
    unit_type: str = ""
    unit_price: int = 0
    num_units: int = 0
    amount: int = 0
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("cluster_name", STRING),
        F("description", STRING),
        F("unit_type", STRING),
        F("unit_price", INT64),
        F("num_units", INT64),
        F("amount", INT64),
    )


@dataclass
class BillingCycle:
    year: int = 0
    month: int = 0
    FIELDS: ClassVar[tuple[F, ...]] = (F("year", INT32), F("month", INT32))


@dataclass
class ChargerAttempt:
    ticket: int = 0
    successful: bool = False
    payment_method_id: str = ""
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("ticket", INT32),
        F("successful", BOOL),
        F("payment_method_id", STRING),
    )


@dataclass
class MonthlyInvoiceBundle:
    billing_cycle: BillingCycle | None = None
    default_credits_issued: Cent | None = None
    auto_credits_issued: Cent | None = None
    prepaid_tokens_to_spend: Cent | None = None
    billing_items_csv_asset_key_suffix: str | None = None
    corrections_csv_asset_key_suffix: str | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("billing_cycle", MESSAGE, BillingCycle),
        F("default_credits_issued", MESSAGE, Cent),
        F("auto_credits_issued", MESSAGE, Cent),
        F("prepaid_tokens_to_spend", MESSAGE, Cent),
        F("billing_items_csv_asset_key_suffix", STRING, optional=True),
        F("corrections_csv_asset_key_suffix", STRING, optional=True),
    )


class InvoiceStatus(IntEnum):
    INVALID = 0
    PENDING = 1
    PAID = 2
    WILL_NEVER_BE_CHARGED = 3
    FAILED = 4


@dataclass
class InvoiceBundle:
    team_id: str = ""
    invoice_id: str = ""
    invoice_number: str = ""
    create_time: datetime | None = None
    invoice_status: InvoiceStatus = InvoiceStatus.INVALID
    first_desired_next_cycle_ts: datetime | None = None
    charger_attempts: list[ChargerAttempt] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    subtotal: int = 0
    tax: int = 0
    total: int = 0
    invoice_pdf_asset_key_suffix: str = ""
    monthly: MonthlyInvoiceBundle | None = None
    prepaid: Empty | None = None
    subscriptions: Empty | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("team_id", STRING),
        F("invoice_id", STRING),
        F("invoice_number", STRING),
        F("create_time", TIMESTAMP),
        F("invoice_status", ENUM, InvoiceStatus),
        F("first_desired_next_cycle_ts", TIMESTAMP),
        F("charger_attempts", MESSAGE, ChargerAttempt, repeated=True),
        F("lines", MESSAGE, Line, repeated=True),
        F("subtotal", INT64),
        F("tax", INT64),
        F("total", INT64),
        F("invoice_pdf_asset_key_suffix", STRING),
        F("monthly", MESSAGE, MonthlyInvoiceBundle, oneof="flavour"),
        F("prepaid", MESSAGE, Empty, oneof="flavour"),
        F("subscriptions", MESSAGE, Empty, oneof="flavour"),
    )


@dataclass
class ListInvoicesResp:
    invoices: list[InvoiceBundle] = field(default_factory=list)
    FIELDS: ClassVar[tuple[F, ...]] = (F("invoices", MESSAGE, InvoiceBundle, repeated=True),)


class ChangeOrigin(IntEnum):
    INVALID_ORIGIN = 0
    PURCHASE = 10
    SPEND = 20
    REFUND = 30
    MANUAL = 40
    AUTO_PURCHASE = 50  # docs-only; its number is not published (contract 4.9)


class TopUpStatus(IntEnum):
    INVALID_STATUS = 0
    TO_GENERATE_INVOICE = 10
    FAILED_TO_GENERATE_INVOICE = 20
    TO_CHARGE = 30
    FAILED_TO_CHARGE = 40
    SUCCEEDED = 50


# The docs' spelling goes out (contract section 6.1); both spellings are read.
rename(TopUpStatus.FAILED_TO_GENERATE_INVOICE, "FAILED_TO_GEMNERATE_INVOICE")


class ProcessorKind(IntEnum):
    UNKNOWN = 0
    STRIPE = 1
    CHECKOUT = 2
    EXTERNAL = 3
    MANUAL = 4


@dataclass
class PaymentProcessor:
    """Docs-only (the public proto reserves field 90 for it)."""

    kind: ProcessorKind = ProcessorKind.UNKNOWN
    FIELDS: ClassVar[tuple[F, ...]] = (F("kind", ENUM, ProcessorKind),)


@dataclass
class PrepaidBalanceChange:
    team_id: str = ""
    change_origin: ChangeOrigin = ChangeOrigin.INVALID_ORIGIN
    topup_status: TopUpStatus | None = None
    amount: Cent | None = None
    invoice_id: str | None = None
    invoice_number: str | None = None
    create_time: datetime | None = None
    spend_bp_key_year: int | None = None
    spend_bp_key_month: int | None = None
    create_ts: datetime | None = None
    payment_processor: PaymentProcessor | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("team_id", STRING),
        F("change_origin", ENUM, ChangeOrigin),
        F("topup_status", ENUM, TopUpStatus, optional=True),
        F("amount", MESSAGE, Cent),
        F("invoice_id", STRING, optional=True),
        F("invoice_number", STRING, optional=True),
        F("create_time", TIMESTAMP),
        F("spend_bp_key_year", INT32, optional=True),
        F("spend_bp_key_month", INT32, optional=True),
        F("create_ts", TIMESTAMP, optional=True),
        F("payment_processor", MESSAGE, PaymentProcessor, optional=True),
    )


@dataclass
class ListPrepaidBalanceChangesResp:
    changes: list[PrepaidBalanceChange] = field(default_factory=list)
    total: Cent | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("changes", MESSAGE, PrepaidBalanceChange, repeated=True),
        F("total", MESSAGE, Cent),
    )
