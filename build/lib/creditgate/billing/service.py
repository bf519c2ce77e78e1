"""Billing profiles, saved cards and the auto top-up configuration.

A profile ties an account to its processor-side customer and default card. Cards are saved by
the processor first (outside any transaction) and then recorded here with `record_card`.
Amounts in this domain are whole cents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup_state
from creditgate.billing import repository as repo
from creditgate.errors import NotFound, ValidationError
from creditgate.ledger import service as ledger
from creditgate.payments.gateway import SavedCard

MIN_TOPUP_CENTS = 1000
MAX_TOPUP_CENTS = 100_000_000  # $1,000,000: far below int64 overflow once in ledger units
MIN_THRESHOLD_CENTS = 500


@dataclass(frozen=True)
class Profile:
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


def check_cents(value: Any, field: str, *, minimum: int, maximum: int = MAX_TOPUP_CENTS) -> int:
    """An integer number of cents within [minimum, maximum]; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be an integer number of cents", field=field)
    if not minimum <= value <= maximum:
        raise ValidationError(f"{field} must be between {minimum} and {maximum} cents", field=field)
    return value


def _profile(row: Any) -> Profile:
    return Profile(
        account_id=row.account_id,
        processor=row.processor,
        customer_id=row.customer_id,
        default_payment_method_id=row.default_payment_method_id,
        brand=row.brand,
        last4=row.last4,
        first_topup_success=bool(row.first_topup_success),
    )


async def get_profile(conn: AsyncConnection, account_id: str) -> Profile | None:
    row = await repo.get_profile(conn, account_id)
    return None if row is None else _profile(row)


async def customer_id(conn: AsyncConnection, account_id: str, processor: str) -> str | None:
    """The account's customer id at `processor`, if one was created."""
    profile = await get_profile(conn, account_id)
    if profile is None or profile.processor != processor:
        return None
    return profile.customer_id


async def record_card(
    conn: AsyncConnection,
    account_id: str,
    *,
    processor: str,
    customer: str,
    card: SavedCard,
    now: datetime,
    make_default: bool = True,
) -> Card:
    """Record a card the processor has saved on `customer`, as the default by default."""
    await ledger.lock(conn, [account_id])
    await ledger.get_account(conn, account_id)
    await repo.insert_card(
        conn,
        {
            "account_id": account_id,
            "payment_method_id": card.payment_method_id,
            "brand": card.brand,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "created_at": now,
        },
    )
    existing = await get_profile(conn, account_id)
    values: dict[str, Any] = {"processor": processor, "customer_id": customer, "updated_at": now}
    if make_default or existing is None or existing.default_payment_method_id is None:
        values.update(default_payment_method_id=card.payment_method_id, brand=card.brand, last4=card.last4)
    if existing is None:
        values["first_topup_success"] = False
    await repo.upsert_profile(conn, account_id, values)
    profile = await get_profile(conn, account_id)
    is_default = profile is not None and profile.default_payment_method_id == card.payment_method_id
    return Card(
        account_id, card.payment_method_id, card.brand, card.last4, card.exp_month, card.exp_year, is_default
    )


async def list_cards(conn: AsyncConnection, account_id: str) -> list[Card]:
    await ledger.get_account(conn, account_id)
    profile = await get_profile(conn, account_id)
    default = profile.default_payment_method_id if profile else None
    return [
        Card(
            r.account_id,
            r.payment_method_id,
            r.brand,
            r.last4,
            r.exp_month,
            r.exp_year,
            r.payment_method_id == default,
        )
        for r in await repo.list_cards(conn, account_id)
    ]


async def get_card(conn: AsyncConnection, account_id: str, payment_method_id: str) -> Card:
    row = await repo.get_card(conn, account_id, payment_method_id)
    if row is None:
        raise NotFound(
            f"no saved payment method {payment_method_id!r} on this account", field="payment_method_id"
        )
    profile = await get_profile(conn, account_id)
    is_default = profile is not None and profile.default_payment_method_id == payment_method_id
    return Card(
        row.account_id, row.payment_method_id, row.brand, row.last4, row.exp_month, row.exp_year, is_default
    )


async def get_topup_config(conn: AsyncConnection, account_id: str) -> TopupConfig:
    row = await repo.get_config(conn, account_id)
    if row is None:
        return TopupConfig()
    return TopupConfig(
        amount=int(row.amount),
        threshold=int(row.threshold),
        error=row.error,
        disabled_reason=row.disabled_reason,
        last_failed_at=row.last_failed_at,
        monthly_cap=None if row.monthly_cap is None else int(row.monthly_cap),
    )


async def set_topup_config(
    conn: AsyncConnection, account_id: str, *, amount: Any, threshold: Any, now: datetime
) -> TopupConfig:
    """Create or replace the auto top-up config. A new config clears the previous error state."""
    amount = check_cents(amount, "amount", minimum=MIN_TOPUP_CENTS)
    threshold = check_cents(threshold, "threshold", minimum=MIN_THRESHOLD_CENTS)
    await ledger.lock(conn, [account_id])
    await ledger.get_account(conn, account_id)
    values = {
        "amount": amount,
        "threshold": threshold,
        "error": None,
        "disabled_reason": None,
        "last_failed_at": None,
        "updated_at": now,
    }
    await repo.upsert_config(conn, account_id, values)
    await autotopup_state.reenable(conn, account_id, now)  # also ends a backoff or a pause
    return TopupConfig(amount=amount, threshold=threshold)


async def delete_topup_config(conn: AsyncConnection, account_id: str) -> bool:
    """Remove the config; False when there was none (still a success for callers)."""
    await ledger.get_account(conn, account_id)
    return await repo.delete_config(conn, account_id)
