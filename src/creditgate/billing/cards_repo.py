"""SQL for billing profiles and saved cards. Only billing.cards imports this module."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.models import billing_cards, billing_profiles
from creditgate.billing.rows import Card, Profile

_cards = billing_cards.c


def _profile(row: Row[Any]) -> Profile:
    return Profile(
        account_id=row.account_id,
        processor=row.processor,
        customer_id=row.customer_id,
        default_payment_method_id=row.default_payment_method_id,
        brand=row.brand,
        last4=row.last4,
        first_topup_success=bool(row.first_topup_success),
    )


def _card(row: Row[Any]) -> Card:
    return Card(
        row.account_id,
        row.payment_method_id,
        row.brand,
        row.last4,
        row.exp_month,
        row.exp_year,
        bool(row.is_default),
    )


def _cards_with_default() -> Select[Any]:
    """Cards with `is_default`: whether the profile names the card as its default."""
    is_default = (billing_profiles.c.default_payment_method_id == _cards.payment_method_id).label(
        "is_default"
    )
    return select(billing_cards, is_default).select_from(
        billing_cards.outerjoin(billing_profiles, billing_profiles.c.account_id == _cards.account_id)
    )


async def get_profile(conn: AsyncConnection, account_id: str) -> Profile | None:
    stmt = select(billing_profiles).where(billing_profiles.c.account_id == account_id)
    row = (await conn.execute(stmt)).first()
    return None if row is None else _profile(row)


async def profile_by_customer(conn: AsyncConnection, customer_id: str) -> Profile | None:
    stmt = select(billing_profiles).where(billing_profiles.c.customer_id == customer_id).limit(1)
    row = (await conn.execute(stmt)).first()
    return None if row is None else _profile(row)


async def upsert_profile(conn: AsyncConnection, account_id: str, values: dict[str, Any]) -> None:
    """Update the profile, or insert it. Callers hold the account lock."""
    where = billing_profiles.c.account_id == account_id
    updated = await conn.execute(billing_profiles.update().where(where).values(**values))
    if updated.rowcount == 0:
        await conn.execute(billing_profiles.insert().values(account_id=account_id, **values))


async def insert_card(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """False when the card was recorded already."""
    try:
        async with conn.begin_nested():
            await conn.execute(billing_cards.insert().values(**row))
    except IntegrityError:
        return False
    return True


async def get_card(conn: AsyncConnection, account_id: str, payment_method_id: str) -> Card | None:
    stmt = _cards_with_default().where(
        _cards.account_id == account_id, _cards.payment_method_id == payment_method_id
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else _card(row)


async def list_cards(conn: AsyncConnection, account_id: str) -> list[Card]:
    stmt = (
        _cards_with_default()
        .where(_cards.account_id == account_id)
        .order_by(_cards.created_at, _cards.payment_method_id)
    )
    return [_card(row) for row in await conn.execute(stmt)]


async def update_card(
    conn: AsyncConnection, account_id: str, payment_method_id: str, values: dict[str, Any]
) -> None:
    await conn.execute(
        billing_cards.update()
        .where(_cards.account_id == account_id, _cards.payment_method_id == payment_method_id)
        .values(**values)
    )


async def delete_card(conn: AsyncConnection, account_id: str, payment_method_id: str) -> bool:
    deleted = await conn.execute(
        billing_cards.delete().where(
            _cards.account_id == account_id, _cards.payment_method_id == payment_method_id
        )
    )
    return bool(deleted.rowcount)
