"""Reading and writing an account's spending limit. Enforcement lives in limits.service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.errors import ValidationError
from creditgate.limits.models import spending_limits

DURATIONS = ("daily", "weekly", "monthly")
STRATEGIES = ("fixed", "sliding")


@dataclass(frozen=True)
class SpendingLimit:
    account_id: str
    amount: int  # ledger units
    duration: str
    strategy: str


async def get_limit(conn: AsyncConnection, account_id: str) -> SpendingLimit | None:
    row = (
        await conn.execute(select(spending_limits).where(spending_limits.c.account_id == account_id))
    ).first()
    if row is None:
        return None
    return SpendingLimit(row.account_id, row.amount, row.duration, row.strategy)


async def set_limit(
    conn: AsyncConnection, account_id: str, *, amount: int, duration: str, strategy: str, now: datetime
) -> SpendingLimit:
    """Create or replace the account's limit (amount in ledger units, > 0)."""
    if duration not in DURATIONS:
        raise ValidationError("duration must be daily, weekly or monthly", field="duration")
    if strategy not in STRATEGIES:
        raise ValidationError("strategy must be fixed or sliding", field="strategy")
    if amount <= 0:
        raise ValidationError("amount must be positive", field="amount")
    values = {"amount": amount, "duration": duration, "strategy": strategy, "updated_at": now}
    updated = await conn.execute(
        spending_limits.update().where(spending_limits.c.account_id == account_id).values(**values)
    )
    if updated.rowcount == 0:
        await conn.execute(spending_limits.insert().values(account_id=account_id, **values))
    return SpendingLimit(account_id, amount, duration, strategy)


async def delete_limit(conn: AsyncConnection, account_id: str) -> bool:
    """Remove the limit; False when there was none."""
    result = await conn.execute(delete(spending_limits).where(spending_limits.c.account_id == account_id))
    return bool(result.rowcount)
