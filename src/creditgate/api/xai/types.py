"""prod_charger types (xai/shared/billing/types.proto): Cent, BillingInfo, PaymentMethod."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from creditgate.api.xai.protojson import INT64, MESSAGE, STRING, F


def camel(name: str) -> str:
    """A proto field name as its JSON name: postal_code -> postalCode."""
    return F(name, STRING).json_name


@dataclass
class Cent:
    """USD cents; credit is negative and spend positive."""

    val: int = 0
    FIELDS: ClassVar[tuple[F, ...]] = (F("val", INT64),)


@dataclass
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    country: str = ""
    postal_code: str = ""
    state: str = ""
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("line1", STRING),
        F("line2", STRING),
        F("city", STRING),
        F("country", STRING),
        F("postal_code", STRING),
        F("state", STRING),
    )


@dataclass
class BillingInfo:
    name: str = ""
    address: Address | None = None
    email: str = ""
    tax_id_type: str = ""
    tax_number: str = ""
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("name", STRING),
        F("address", MESSAGE, Address),
        F("email", STRING),
        F("tax_id_type", STRING),
        F("tax_number", STRING),
    )


@dataclass
class CardDetails:
    brand: str = ""
    exp_month: int = 0
    exp_year: int = 0
    last4: str = ""
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("brand", STRING),
        F("exp_month", INT64),
        F("exp_year", INT64),
        F("last4", STRING),
    )


@dataclass
class UsBankAccountBlocked:
    network_code: str = ""
    block_reason: str = ""
    FIELDS: ClassVar[tuple[F, ...]] = (F("network_code", STRING), F("block_reason", STRING))


@dataclass
class UsBankAccountDetails:
    bank_name: str = ""
    last4: str = ""
    routing_number: str = ""
    blocked: UsBankAccountBlocked | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("bank_name", STRING),
        F("last4", STRING),
        F("routing_number", STRING),
        F("blocked", MESSAGE, UsBankAccountBlocked),
    )


@dataclass
class LinkDetails:
    email: str = ""
    FIELDS: ClassVar[tuple[F, ...]] = (F("email", STRING),)


@dataclass
class PaymentMethod:
    payment_method_id: str = ""
    billing_info: BillingInfo | None = None
    card_details: CardDetails | None = None
    us_bank_account_details: UsBankAccountDetails | None = None
    link_details: LinkDetails | None = None
    payment_type: str = ""
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("payment_method_id", STRING),
        F("billing_info", MESSAGE, BillingInfo),
        F("card_details", MESSAGE, CardDetails),
        F("us_bank_account_details", MESSAGE, UsBankAccountDetails),
        F("link_details", MESSAGE, LinkDetails),
        F("payment_type", STRING),
    )
