"""SQL for auto top-up, refunds and statements. Only billing's own modules import this."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.models import (
    auto_topup_configs,
    billing_cards,
    billing_profiles,
    invoices,
    statements,
    topup_refunds,
    topups,
)
from creditgate.ledger.models import accounts
from creditgate.money import UNITS_PER_CENT

_c = auto_topup_configs.c
_BELOW = accounts.c.balance < _c.threshold * UNITS_PER_CENT
IN_FLIGHT = ("created", "pending", "completed")  # statuses that count toward the monthly cap


def _configs_with_balance() -> Any:
    return select(auto_topup_configs, accounts.c.balance).select_from(
        auto_topup_configs.join(accounts, accounts.c.id == _c.account_id)
    )


async def below_threshold(conn: AsyncConnection, account_ids: Sequence[str]) -> list[Any]:
    """Configs (with the balance) of these accounts whose balance is under the threshold."""
    stmt = _configs_with_balance().where(_c.account_id.in_(list(account_ids)), _BELOW).order_by(_c.account_id)
    return list(await conn.execute(stmt))


async def configs_with_balance(conn: AsyncConnection, account_ids: Sequence[str]) -> list[Any]:
    stmt = _configs_with_balance().where(_c.account_id.in_(list(account_ids))).order_by(_c.account_id)
    return list(await conn.execute(stmt))


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


async def get_config(conn: AsyncConnection, account_id: str) -> Any:
    return (await conn.execute(select(auto_topup_configs).where(_c.account_id == account_id))).first()


async def update_config(conn: AsyncConnection, account_id: str, values: dict[str, Any], *where: Any) -> int:
    """Update the config row, optionally guarded by extra conditions; returns rows changed."""
    stmt = auto_topup_configs.update().where(_c.account_id == account_id, *where).values(**values)
    return int((await conn.execute(stmt)).rowcount)


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


async def unsettled_auto_topup(conn: AsyncConnection, account_id: str) -> Any:
    """The account's auto top-up still waiting for its charge, if any."""
    stmt = select(topups).where(
        topups.c.account_id == account_id, topups.c.origin == "auto", topups.c.status == "created"
    )
    return (await conn.execute(stmt)).first()


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


async def topup_by_payment(conn: AsyncConnection, payment_id: str) -> Any:
    stmt = select(topups).where(topups.c.payment_id == payment_id).order_by(topups.c.created_at).limit(1)
    return (await conn.execute(stmt)).first()


async def list_topups(conn: AsyncConnection, account_id: str, limit: int) -> list[Any]:
    stmt = (
        select(topups)
        .where(topups.c.account_id == account_id)
        .order_by(topups.c.created_at.desc(), topups.c.id.desc())
        .limit(limit)
    )
    return list(await conn.execute(stmt))


async def profile_by_customer(conn: AsyncConnection, customer_id: str) -> Any:
    stmt = select(billing_profiles).where(billing_profiles.c.customer_id == customer_id).limit(1)
    return (await conn.execute(stmt)).first()


async def update_card(
    conn: AsyncConnection, account_id: str, payment_method_id: str, values: dict[str, Any]
) -> None:
    await conn.execute(
        billing_cards.update()
        .where(
            billing_cards.c.account_id == account_id, billing_cards.c.payment_method_id == payment_method_id
        )
        .values(**values)
    )


# Refunds ------------------------------------------------------------------------------------


async def insert_refund(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(topup_refunds.insert().values(**row))


async def refunds_of(conn: AsyncConnection, topup_id: str) -> list[Any]:
    stmt = (
        select(topup_refunds)
        .where(topup_refunds.c.topup_id == topup_id)
        .order_by(topup_refunds.c.created_at, topup_refunds.c.id)
    )
    return list(await conn.execute(stmt))


async def get_refund(conn: AsyncConnection, refund_id: str) -> Any:
    return (await conn.execute(select(topup_refunds).where(topup_refunds.c.id == refund_id))).first()


async def refund_by_processor_id(conn: AsyncConnection, account_id: str, processor_refund_id: str) -> Any:
    stmt = select(topup_refunds).where(
        topup_refunds.c.account_id == account_id, topup_refunds.c.processor_refund_id == processor_refund_id
    )
    return (await conn.execute(stmt)).first()


async def refund_by_request_key(conn: AsyncConnection, account_id: str, key: str) -> Any:
    stmt = select(topup_refunds).where(
        topup_refunds.c.account_id == account_id, topup_refunds.c.request_key == key
    )
    return (await conn.execute(stmt)).first()


async def update_refund(
    conn: AsyncConnection, refund_id: str, from_statuses: Sequence[str], values: dict[str, Any]
) -> int:
    stmt = (
        topup_refunds.update()
        .where(topup_refunds.c.id == refund_id, topup_refunds.c.status.in_(list(from_statuses)))
        .values(**values)
    )
    return int((await conn.execute(stmt)).rowcount)


# Statements ---------------------------------------------------------------------------------


async def accounts_to_close(
    conn: AsyncConnection, period_start: datetime, period_end: datetime, limit: int
) -> list[str]:
    """Accounts created before `period_end` that have no statement for the period yet."""
    done = select(statements.c.account_id).where(
        statements.c.account_id == accounts.c.id, statements.c.period_start == period_start
    )
    stmt = (
        select(accounts.c.id)
        .where(accounts.c.created_at < period_end, ~done.exists())
        .order_by(accounts.c.id)
        .limit(limit)
    )
    return [row[0] for row in await conn.execute(stmt)]


async def last_statement(conn: AsyncConnection, account_id: str) -> Any:
    stmt = (
        select(statements)
        .where(statements.c.account_id == account_id)
        .order_by(statements.c.period_start.desc())
        .limit(1)
    )
    return (await conn.execute(stmt)).first()


async def statement_totals_before(conn: AsyncConnection, account_id: str, before: datetime) -> int:
    stmt = select(func.coalesce(func.sum(statements.c.total), 0)).where(
        statements.c.account_id == account_id, statements.c.period_start < before
    )
    return int((await conn.execute(stmt)).scalar_one())


async def insert_statement(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(statements.insert().values(**row))


async def statement_of_invoice(conn: AsyncConnection, invoice_id: str) -> Any:
    return (await conn.execute(select(statements).where(statements.c.invoice_id == invoice_id))).first()


async def set_invoice_status(
    conn: AsyncConnection, invoice_id: str, from_statuses: Sequence[str], values: dict[str, Any]
) -> int:
    stmt = (
        invoices.update()
        .where(invoices.c.id == invoice_id, invoices.c.status.in_(list(from_statuses)))
        .values(**values)
    )
    return int((await conn.execute(stmt)).rowcount)
