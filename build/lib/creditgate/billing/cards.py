"""Saving cards for auto top-up: recording a saved card re-enables auto top-up, and the
SetupIntent flow needs the processor customer on the profile before any card exists."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup_repo as arepo
from creditgate.billing import autotopup_state, service
from creditgate.billing import repository as repo
from creditgate.billing.service import Card
from creditgate.ledger import service as ledger
from creditgate.payments.gateway import SavedCard


async def card_saved(
    conn: AsyncConnection, account_id: str, *, processor: str, customer: str, card: SavedCard, now: datetime
) -> Card:
    """Record a card the processor saved as the default, refresh its details if it was known
    (e.g. recorded from a webhook without them), and turn auto top-up back on."""
    await service.record_card(conn, account_id, processor=processor, customer=customer, card=card, now=now)
    recorded = await service.get_card(conn, account_id, card.payment_method_id)  # as stored
    if (recorded.brand, recorded.last4) != (card.brand, card.last4) and card.last4:
        details = {
            "brand": card.brand,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
        }
        await arepo.update_card(conn, account_id, card.payment_method_id, details)
        await repo.upsert_profile(conn, account_id, {"brand": card.brand, "last4": card.last4})
        recorded = await service.get_card(conn, account_id, card.payment_method_id)
    await autotopup_state.reenable(conn, account_id, now)
    return recorded


async def record_customer(
    conn: AsyncConnection, account_id: str, *, processor: str, customer: str, now: datetime
) -> None:
    """Keep the processor customer on the profile (before any card is saved on it)."""
    await ledger.lock(conn, [account_id])
    await ledger.get_account(conn, account_id)
    existing = await service.get_profile(conn, account_id)
    if existing is not None and existing.processor == processor and existing.customer_id == customer:
        return
    values: dict[str, object] = {"processor": processor, "customer_id": customer, "updated_at": now}
    if existing is None:
        values["first_topup_success"] = False
    else:  # another processor's default card cannot be charged here
        values.update(default_payment_method_id=None, brand=None, last4=None)
    await repo.upsert_profile(conn, account_id, values)
