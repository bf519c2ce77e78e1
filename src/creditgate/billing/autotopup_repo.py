"""SQL for auto top-up: its config/state row and the auto top-ups it queues. Only the
billing.autotopup* modules import this module."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.models import auto_topup_configs, topups
from creditgate.billing.rows import AutoTopupRow
from creditgate.db.driver import one_of
from creditgate.ledger.models import accounts
from creditgate.money import UNITS_PER_CENT

_c = auto_topup_configs.c
_BELOW = accounts.c.balance < _c.threshold * UNITS_PER_CENT
IN_FLIGHT = ("created", "pending", "completed")  # statuses that count toward the monthly cap


def _row(row: Row[Any]) -> AutoTopupRow:
    return AutoTopupRow(
        account_id=row.account_id,
        amount=int(row.amount),
        threshold=int(row.threshold),
        error=row.error,
        disabled_reason=row.disabled_reason,
        last_failed_at=row.last_failed_at,
        monthly_cap=None if row.monthly_cap is None else int(row.monthly_cap),
        failures=int(row.failures),
        next_attempt_at=row.next_attempt_at,
        pending_topup_id=row.pending_topup_id,
        disabled_code=row.disabled_code,
        low_since=row.low_since,
        balance=int(row.balance),
    )


def _configs_with_balance() -> Select[Any]:
    return select(auto_topup_configs, accounts.c.balance).select_from(
        auto_topup_configs.join(accounts, accounts.c.id == _c.account_id)
    )


async def get_config(conn: AsyncConnection, account_id: str) -> AutoTopupRow | None:
    row = (await conn.execute(_configs_with_balance().where(_c.account_id == account_id))).first()
    return None if row is None else _row(row)


async def below_threshold(conn: AsyncConnection, account_ids: Sequence[str]) -> list[AutoTopupRow]:
    """Configs (with the balance) of these accounts whose balance is under the threshold."""
    in_ids = one_of(conn, _c.account_id, account_ids)
    stmt = _configs_with_balance().where(in_ids, _BELOW).order_by(_c.account_id)
    return [_row(row) for row in await conn.execute(stmt)]


async def configs_with_balance(conn: AsyncConnection, account_ids: Sequence[str]) -> list[AutoTopupRow]:
    stmt = _configs_with_balance().where(one_of(conn, _c.account_id, account_ids)).order_by(_c.account_id)
    return [_row(row) for row in await conn.execute(stmt)]


async def sweep_candidates(conn: AsyncConnection, now: datetime, limit: int) -> list[str]:
    """Accounts whose auto top-up may need a step: under the threshold and free to charge (or
    not yet told balance.low), or back above it with balance.low still set."""
    idle = and_(
        _c.pending_topup_id.is_(None),
        _c.disabled_reason.is_(None),
        or_(_c.next_attempt_at.is_(None), _c.next_attempt_at <= now),
    )
    stmt = (
        select(_c.account_id)
        .select_from(auto_topup_configs.join(accounts, accounts.c.id == _c.account_id))
        .where(or_(and_(_BELOW, or_(idle, _c.low_since.is_(None))), and_(~_BELOW, _c.low_since.isnot(None))))
        .order_by(_c.account_id)
        .limit(limit)
    )
    return [row[0] for row in await conn.execute(stmt)]


async def upsert_config(conn: AsyncConnection, account_id: str, values: dict[str, Any]) -> None:
    """Update the config, or insert it. Callers hold the account lock."""
    updated = await conn.execute(
        auto_topup_configs.update().where(_c.account_id == account_id).values(**values)
    )
    if updated.rowcount == 0:
        await conn.execute(auto_topup_configs.insert().values(account_id=account_id, **values))


async def update_config(
    conn: AsyncConnection, account_id: str, values: dict[str, Any], *, unless_set: str | None = None
) -> int:
    """Update the config row; with `unless_set`, only while that column is still NULL (a
    guarded claim). Returns rows changed."""
    stmt = auto_topup_configs.update().where(_c.account_id == account_id)
    if unless_set is not None:
        stmt = stmt.where(_c[unless_set].is_(None))
    return int((await conn.execute(stmt.values(**values))).rowcount)


async def delete_config(conn: AsyncConnection, account_id: str) -> bool:
    result = await conn.execute(delete(auto_topup_configs).where(_c.account_id == account_id))
    return bool(result.rowcount)


async def auto_spent(conn: AsyncConnection, account_id: str, start: datetime, end: datetime) -> int:
    """Cents of auto top-ups created in [start, end) that are charged or being charged."""
    stmt = select(func.coalesce(func.sum(topups.c.amount), 0)).where(
        topups.c.account_id == account_id,
        topups.c.origin == "auto",
        topups.c.status.in_(IN_FLIGHT),
        topups.c.created_at >= start,
        topups.c.created_at < end,
    )
    return int((await conn.execute(stmt)).scalar_one())


async def unsettled_auto_topup(conn: AsyncConnection, account_id: str) -> str | None:
    """The id of the account's auto top-up still waiting for its charge, if any."""
    stmt = select(topups.c.id).where(
        topups.c.account_id == account_id, topups.c.origin == "auto", topups.c.status == "created"
    )
    return (await conn.execute(stmt)).scalar_one_or_none()


async def topup_status(conn: AsyncConnection, topup_id: str) -> str | None:
    return (await conn.execute(select(topups.c.status).where(topups.c.id == topup_id))).scalar_one_or_none()


async def first_attempt_at(conn: AsyncConnection, topup_id: str) -> datetime | None:
    stmt = select(topups.c.first_attempt_at).where(topups.c.id == topup_id)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def claim_topups(
    conn: AsyncConnection, status: str, now: datetime, lease_until: datetime, limit: int
) -> list[str]:
    """Take auto top-ups in `status` whose lease is free: a lease, one more attempt, and on
    PostgreSQL rows another runner holds are skipped."""
    free = or_(topups.c.lease_until.is_(None), topups.c.lease_until <= now)
    where = (topups.c.origin == "auto", topups.c.status == status, free)
    stmt = select(topups.c.id).where(*where).order_by(topups.c.created_at, topups.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    ids = [row[0] for row in await conn.execute(stmt)]
    if ids:
        await conn.execute(
            topups.update()
            .where(topups.c.id.in_(ids), *where)
            .values(
                lease_until=lease_until,
                attempts=topups.c.attempts + 1,
                first_attempt_at=func.coalesce(topups.c.first_attempt_at, now),
            )
        )
    return ids


async def set_lease(conn: AsyncConnection, topup_id: str, lease_until: datetime) -> None:
    await conn.execute(topups.update().where(topups.c.id == topup_id).values(lease_until=lease_until))
