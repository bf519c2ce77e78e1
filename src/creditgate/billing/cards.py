"""Billing profiles and saved cards.

A profile ties an account to its processor-side customer and default card. Cards are saved by
the processor first (outside any transaction) and then recorded here: `card_saved` records one
as the default and turns auto top-up back on; `set_default_card` makes a saved one the
default; `record_customer` keeps the processor customer on the profile before any card exists
(the SetupIntent flow).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup_state
from creditgate.billing import cards_repo as repo
from creditgate.billing.rows import Card, Profile
from creditgate.errors import NotFound
from creditgate.ledger import service as ledger
from creditgate.payments.gateway import SavedCard


async def get_profile(conn: AsyncConnection, account_id: str) -> Profile | None:
    return await repo.get_profile(conn, account_id)


async def profile_by_customer(conn: AsyncConnection, customer_id: str) -> Profile | None:
    """The profile whose processor customer is `customer_id` (webhooks name only that)."""
    return await repo.profile_by_customer(conn, customer_id)


async def customer_id(conn: AsyncConnection, account_id: str, processor: str) -> str | None:
    """The account's customer id at `processor`, if one was created."""
    profile = await get_profile(conn, account_id)
    if profile is None or profile.processor != processor:
        return None
    return profile.customer_id


async def default_card_id(conn: AsyncConnection, account_id: str, processor: str) -> str | None:
    """The account's default card at `processor`, if it has one a top-up can charge."""
    profile = await get_profile(conn, account_id)
    if profile is None or profile.processor != processor or not profile.customer_id:
        return None
    return profile.default_payment_method_id


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
    return await repo.list_cards(conn, account_id)


async def get_card(conn: AsyncConnection, account_id: str, payment_method_id: str) -> Card:
    card = await repo.get_card(conn, account_id, payment_method_id)
    if card is None:
        raise NotFound(
            f"no saved payment method {payment_method_id!r} on this account", field="payment_method_id"
        )
    return card


async def card_saved(
    conn: AsyncConnection, account_id: str, *, processor: str, customer: str, card: SavedCard, now: datetime
) -> Card:
    """Record a card the processor saved as the default, refresh its details if it was known
    (e.g. recorded from a webhook without them), and turn auto top-up back on."""
    await record_card(conn, account_id, processor=processor, customer=customer, card=card, now=now)
    recorded = await get_card(conn, account_id, card.payment_method_id)  # as stored
    if (recorded.brand, recorded.last4) != (card.brand, card.last4) and card.last4:
        details = {
            "brand": card.brand,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
        }
        await repo.update_card(conn, account_id, card.payment_method_id, details)
        await repo.upsert_profile(conn, account_id, {"brand": card.brand, "last4": card.last4})
        recorded = await get_card(conn, account_id, card.payment_method_id)
    await autotopup_state.reenable(conn, account_id, now)
    return recorded


async def set_default_card(
    conn: AsyncConnection, account_id: str, payment_method_id: str, now: datetime
) -> Card:
    """Make one of the account's saved cards the default: the card every top-up charges when
    none is named (both APIs and auto top-up). Another account's card, or an unknown one, is
    NotFound and changes nothing. A new default turns auto top-up back on, as a new card does."""
    await ledger.lock(conn, [account_id])
    await ledger.get_account(conn, account_id)
    card = await get_card(conn, account_id, payment_method_id)
    if card.is_default:
        return card
    values = {"default_payment_method_id": payment_method_id, "brand": card.brand, "last4": card.last4}
    await repo.upsert_profile(conn, account_id, {**values, "updated_at": now})
    await autotopup_state.reenable(conn, account_id, now)
    return await get_card(conn, account_id, payment_method_id)


async def record_customer(
    conn: AsyncConnection, account_id: str, *, processor: str, customer: str, now: datetime
) -> None:
    """Keep the processor customer on the profile (before any card is saved on it)."""
    await ledger.lock(conn, [account_id])
    await ledger.get_account(conn, account_id)
    existing = await get_profile(conn, account_id)
    if existing is not None and existing.processor == processor and existing.customer_id == customer:
        return
    values: dict[str, object] = {"processor": processor, "customer_id": customer, "updated_at": now}
    if existing is None:
        values["first_topup_success"] = False
    else:  # another processor's default card cannot be charged here
        values.update(default_payment_method_id=None, brand=None, last4=None)
    await repo.upsert_profile(conn, account_id, values)


async def mark_topped_up(conn: AsyncConnection, account_id: str, now: datetime) -> None:
    """A top-up of the account was paid (Cloudflare's `first_topup_success`)."""
    await repo.upsert_profile(conn, account_id, {"first_topup_success": True, "updated_at": now})
