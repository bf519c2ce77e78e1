"""The buyer's billing info (name, email, address, tax id) printed on its invoices.

One optional row per account, in xAI's BillingInfo shape so the xAI billing-info routes can
serve the same store. `set_info` replaces the whole record (a field left out is cleared);
empty strings count as "not given", as in protobuf.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.invoice_models import billing_info
from creditgate.billing.reference_lists import COUNTRIES, TAX_ID_TYPES
from creditgate.errors import NotFound, ValidationError
from creditgate.ledger import service as ledger

ADDRESS_FIELDS = {"line1": 200, "line2": 200, "city": 100, "state": 100, "postal_code": 32, "country": 2}
FIELDS = ("name", "email", "address", "tax_id_type", "tax_number")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Address:
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None

    def lines(self) -> list[str]:
        """The address as printed: street lines, "postal code city", "state", country code."""
        town = " ".join(p for p in (self.postal_code, self.city) if p)
        return [p for p in (self.line1, self.line2, town, self.state, self.country) if p]


@dataclass(frozen=True)
class BillingInfo:
    account_id: str
    name: str
    email: str | None
    address: Address
    tax_id_type: str | None
    tax_number: str | None
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, null when not given."""
        data = asdict(self)
        data["updated_at"] = self.updated_at.isoformat()
        return data


def _text(value: object, field: str, limit: int, *, multiline: bool = False) -> str | None:
    """A trimmed string of at most `limit` characters without control characters; None for
    null or an empty string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field=field)
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise ValidationError(f"{field} must be at most {limit} characters", field=field)
    if any(unicodedata.category(ch) == "Cc" and not (multiline and ch == "\n") for ch in value):
        raise ValidationError(f"{field} must not contain control characters", field=field)
    return value


def parse(body: Mapping[str, object]) -> dict[str, Any]:
    """Check a billing-info record; returns the row values. ValidationError names the field."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r}; expected {', '.join(FIELDS)}", field=unknown[0])
    name = _text(body.get("name"), "name", 200)
    if name is None:
        raise ValidationError("name is required (the person or business to invoice)", field="name")
    email = _text(body.get("email"), "email", 254)
    if email is not None and not _EMAIL.match(email):
        raise ValidationError("email must be an email address", field="email")
    row: dict[str, Any] = {"name": name, "email": email}
    address = body.get("address")
    if address is not None and not isinstance(address, Mapping):
        raise ValidationError("address must be an object", field="address")
    address = address or {}
    unknown = sorted(set(address) - set(ADDRESS_FIELDS))
    if unknown:
        raise ValidationError(
            f"unknown address field {unknown[0]!r}; expected {', '.join(ADDRESS_FIELDS)}",
            field=f"address.{unknown[0]}",
        )
    for key, limit in ADDRESS_FIELDS.items():
        row[key] = _text(address.get(key), f"address.{key}", limit)
    if row["country"] is not None:
        row["country"] = row["country"].upper()
        if row["country"] not in COUNTRIES:
            message = "address.country must be an ISO 3166-1 alpha-2 country code such as US or DE"
            raise ValidationError(message, field="address.country")
    row["tax_id_type"] = _text(body.get("tax_id_type"), "tax_id_type", 32)
    row["tax_number"] = _text(body.get("tax_number"), "tax_number", 64)
    if row["tax_id_type"] is not None:
        if row["tax_id_type"] not in TAX_ID_TYPES:
            raise ValidationError(
                "tax_id_type must be one of Stripe's tax id types, such as eu_vat or us_ein",
                field="tax_id_type",
            )
        if row["tax_number"] is None:
            raise ValidationError("tax_number is required with tax_id_type", field="tax_number")
    return row


def _info(row: Any) -> BillingInfo:
    return BillingInfo(
        account_id=row.account_id,
        name=row.name,
        email=row.email,
        address=Address(**{key: getattr(row, key) for key in ADDRESS_FIELDS}),
        tax_id_type=row.tax_id_type,
        tax_number=row.tax_number,
        updated_at=row.updated_at,
    )


async def get_info(conn: AsyncConnection, account_id: str) -> BillingInfo | None:
    """The account's billing info, or None if it never set any."""
    stmt = select(billing_info).where(billing_info.c.account_id == account_id)
    row = (await conn.execute(stmt)).first()
    return None if row is None else _info(row)


async def set_info(
    conn: AsyncConnection, account_id: str, body: Mapping[str, object], now: datetime
) -> BillingInfo:
    """Replace the account's billing info. Holds the account lock, so two writers never race
    the first insert."""
    values = parse(body)
    if not await ledger.lock(conn, [account_id]):
        raise NotFound(f"no account {account_id!r}")
    values["updated_at"] = now
    changed = await conn.execute(
        billing_info.update().where(billing_info.c.account_id == account_id).values(**values)
    )
    if changed.rowcount == 0:
        await conn.execute(billing_info.insert().values(account_id=account_id, **values))
    info = await get_info(conn, account_id)
    assert info is not None
    return info
