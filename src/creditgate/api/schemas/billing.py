"""Schemas of the operator's billing API: saved cards, card-saving sessions, auto top-up,
top-ups with their refunds, and statements marked paid."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from creditgate.api.schemas.common import Request
from creditgate.billing.autotopup_config import MIN_THRESHOLD_CENTS
from creditgate.billing.reference_lists import COUNTRIES, TAX_ID_TYPES
from creditgate.billing.topups import MAX_TOPUP_CENTS, MIN_TOPUP_CENTS

CardText = Annotated[str, Field(min_length=1, max_length=100)]


def _exactly_one_card(schema: dict[str, Any]) -> None:
    for name in ("card", "payment_method_id"):
        schema["properties"][name] = {"type": "string", "minLength": 1, "maxLength": 100}
    schema["oneOf"] = [{"required": ["card"]}, {"required": ["payment_method_id"]}]


class CardCreate(Request):
    """Exactly one of `card` (a test card number on the sandbox) and `payment_method_id`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_card)

    card: CardText | None = None
    payment_method_id: CardText | None = None


class Card(BaseModel):
    account_id: str
    payment_method_id: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    default: bool
    processor: str


class CardList(BaseModel):
    cards: list[Card]


class CardSetup(BaseModel):
    setup_id: str
    client_secret: str
    customer_id: str
    processor: str


class Refund(BaseModel):
    id: str
    topup_id: str
    amount: int
    status: str
    processor_refund_id: str | None
    reason: str | None
    failure_message: str | None
    created_at: str | None
    completed_at: str | None


class Topup(BaseModel):
    id: str
    account_id: str
    invoice_id: str | None
    amount: int
    currency: str
    origin: str
    status: str
    payment_id: str | None
    client_secret: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: str | None
    refunded: int
    refundable: int
    refunds: list[Refund]


class TopupList(BaseModel):
    topups: list[Topup]


class TopupCreate(Request):
    """Charge a saved card for credit (the default card when `payment_method_id` is absent)."""

    amount: Annotated[int, Field(ge=MIN_TOPUP_CENTS, le=MAX_TOPUP_CENTS, description="Cents")]
    payment_method_id: Annotated[str, Field(min_length=1)] | None = None


class RefundCreate(Request):
    amount: (
        Annotated[int, Field(ge=1, le=MAX_TOPUP_CENTS, description="Cents; all that is left if absent")]
        | None
    ) = None
    reason: Annotated[str, Field(max_length=500)] | None = None


class RefundResult(BaseModel):
    topup: Topup
    refund: Refund | None


Amount = Annotated[int, Field(ge=MIN_TOPUP_CENTS, le=MAX_TOPUP_CENTS, description="Cents")]
Threshold = Annotated[int, Field(ge=MIN_THRESHOLD_CENTS, le=MAX_TOPUP_CENTS, description="Cents")]


class AutoTopupSet(Request):
    amount: Amount
    threshold: Threshold
    monthly_cap: Annotated[int, Field(ge=MIN_TOPUP_CENTS, le=MAX_TOPUP_CENTS)] | None = Field(
        default=None, description="Cents per calendar month; null removes the cap, absent keeps it"
    )


class AutoTopupState(BaseModel):
    state: str
    amount: int | None
    threshold: int | None
    monthly_cap: int | None
    spent_this_month: int
    error: str | None
    disabled_reason: str | None
    disabled_code: str | None
    last_failed_at: str | None
    consecutive_failures: int
    next_attempt_at: str | None
    pending_topup: Topup | None


class StatementPaid(BaseModel):
    invoice_id: str
    status: str


NO_CONTROLS = r"^[^\x00-\x1f\x7f-\x9f]*$"
_C = r"\x00-\x1f\x7f-\x9f"  # Unicode category Cc, which the service refuses
SOME_TEXT = rf"^[^{_C}]*[^\s{_C}][^{_C}]*$"
EMAIL = rf"^$|^[^@\s{_C}]+@[^@\s{_C}]+\.[^@\s{_C}]+$"
TAX_ID_TYPE = "^$|^(?:" + "|".join(sorted(TAX_ID_TYPES)) + ")$"  # Stripe's list
COUNTRY = (  # ISO 3166-1 alpha-2, either case
    "^$|^(?:" + "|".join(f"[{c[0]}{c[0].lower()}][{c[1]}{c[1].lower()}]" for c in sorted(COUNTRIES)) + ")$"
)
Text32 = Annotated[str, Field(max_length=32, pattern=NO_CONTROLS)]
Text64 = Annotated[str, Field(max_length=64, pattern=NO_CONTROLS)]
Text100 = Annotated[str, Field(max_length=100, pattern=NO_CONTROLS)]
Text200 = Annotated[str, Field(max_length=200, pattern=NO_CONTROLS)]
_TAX_NUMBER_NEEDED: JsonDict = {
    "if": {"required": ["tax_id_type"], "properties": {"tax_id_type": {"type": "string", "minLength": 1}}},
    "then": {"required": ["tax_number"], "properties": {"tax_number": {"type": "string", "pattern": r"\S"}}},
}


class AddressSet(Request):
    line1: Text200 | None = None
    line2: Text200 | None = None
    city: Text100 | None = None
    state: Text100 | None = None
    postal_code: Text32 | None = None
    country: Annotated[str, Field(pattern=COUNTRY, description="ISO 3166-1 alpha-2 code")] | None = None


class BillingInfoSet(Request):
    """The whole record (PUT replaces it); printed as the buyer on the account's invoices."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_TAX_NUMBER_NEEDED)

    name: Annotated[str, Field(max_length=200, pattern=SOME_TEXT)]
    email: Annotated[str, Field(max_length=254, pattern=EMAIL)] | None = None
    address: AddressSet | None = None
    tax_id_type: Annotated[str, Field(pattern=TAX_ID_TYPE, description="eu_vat, us_ein...")] | None = None
    tax_number: Text64 | None = None


class Address(BaseModel):
    line1: str | None
    line2: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None


class BillingInfo(BaseModel):
    account_id: str
    name: str
    email: str | None
    address: Address
    tax_id_type: str | None
    tax_number: str | None
    updated_at: str
