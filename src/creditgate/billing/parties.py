"""Who an invoice is from and to: the seller and tax (values the workflows pass down from the
settings) and the buyer's billing info, frozen into the invoice row when it is issued.

An issued invoice must not change: `snapshot` is taken in the transaction that creates the
invoice and stored as JSON (`invoices.parties`); the PDF and the xAI invoice view render from
it. Invoices issued before the snapshot existed have none and render from current values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import billing_info
from creditgate.billing.billing_info import ADDRESS_FIELDS, Address, BillingInfo


def address_lines(text: str | None) -> tuple[str, ...]:
    """Address lines from a setting: split on newlines or a literal backslash-n."""
    if not text:
        return ()
    return tuple(p.strip() for p in text.replace("\\n", "\n").split("\n") if p.strip())


@dataclass(frozen=True)
class Seller:
    """The seller's identity and the tax it charges, as configured when an invoice is issued."""

    name: str
    address: tuple[str, ...] = ()
    tax_id: str | None = None
    tax_rate_bps: int = 0
    tax_name: str = "Tax"


@dataclass(frozen=True)
class Parties:
    """An invoice's seller, tax and buyer (None: the account had no billing info) at issue."""

    seller: Seller
    buyer: BillingInfo | None

    def as_json(self) -> dict[str, Any]:
        """The stored shape: {seller:{name,address,tax_id}, tax:{rate_bps,name}, buyer}."""
        s = self.seller
        return {
            "seller": {"name": s.name, "address": list(s.address), "tax_id": s.tax_id},
            "tax": {"rate_bps": s.tax_rate_bps, "name": s.tax_name},
            "buyer": None if self.buyer is None else self.buyer.as_dict(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Parties:
        s, t, b = data["seller"], data["tax"], data.get("buyer")
        seller = Seller(
            str(s["name"]), tuple(s.get("address") or ()), s.get("tax_id"), int(t["rate_bps"]), str(t["name"])
        )
        buyer = None
        if b is not None:
            address = b.get("address") or {}
            buyer = BillingInfo(
                account_id=b["account_id"],
                name=b["name"],
                email=b.get("email"),
                address=Address(**{key: address.get(key) for key in ADDRESS_FIELDS}),
                tax_id_type=b.get("tax_id_type"),
                tax_number=b.get("tax_number"),
                updated_at=datetime.fromisoformat(b["updated_at"]),
            )
        return cls(seller, buyer)


async def snapshot(conn: AsyncConnection, account_id: str, seller: Seller) -> Parties:
    """The parties of an invoice issued now (call in the transaction that issues it)."""
    return Parties(seller, await billing_info.get_info(conn, account_id))
