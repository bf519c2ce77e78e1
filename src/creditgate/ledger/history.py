"""Read-only views of an account's ledger for statements of account: its entries other than
usage one by one, and its usage summed per UTC calendar month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.ledger.models import ledger_entries

USAGE = "usage"


@dataclass(frozen=True)
class Entry:
    id: int
    kind: str
    amount: int  # ledger units, credit positive
    ref: str | None
    created_at: datetime


@dataclass(frozen=True)
class MonthTotal:
    year: int
    month: int
    amount: int  # ledger units, summed over the month's entries
    last_at: datetime  # the newest entry of the month


def _month(conn: AsyncConnection) -> Any:
    """'YYYY-MM' of an entry's UTC creation time, on either engine."""
    column = ledger_entries.c.created_at
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.substr(column, 1, 7)  # SQLite stores naive UTC 'YYYY-MM-DD HH:MM:SS...'


async def entries_except(conn: AsyncConnection, account_id: str, kind: str = USAGE) -> list[Entry]:
    """Every entry of the account but those of `kind`, oldest first."""
    c = ledger_entries.c
    stmt = (
        select(c.id, c.kind, c.amount, c.ref, c.created_at)
        .where(c.account_id == account_id, c.kind != kind)
        .order_by(c.id)
    )
    return [Entry(int(r.id), r.kind, int(r.amount), r.ref, r.created_at) for r in await conn.execute(stmt)]


async def monthly_totals(conn: AsyncConnection, account_id: str, kind: str = USAGE) -> list[MonthTotal]:
    """The entries of `kind` summed per UTC calendar month, oldest month first."""
    c = ledger_entries.c
    month = _month(conn).label("month")
    stmt = (
        select(month, func.sum(c.amount).label("amount"), func.max(c.created_at).label("last_at"))
        .where(c.account_id == account_id, c.kind == kind)
        .group_by(month)
        .order_by(month)
    )
    out = []
    for row in await conn.execute(stmt):
        year, mon = str(row.month).split("-")
        last_at = row.last_at
        if isinstance(last_at, str):  # SQLite's max() returns the stored text
            last_at = datetime.fromisoformat(last_at)
        out.append(MonthTotal(int(year), int(mon), int(row.amount), _aware(last_at)))
    return out


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def posted_between(
    conn: AsyncConnection, account_id: str, start: datetime, end: datetime, kind: str = USAGE
) -> int:
    """The sum of the account's entries of `kind` created in [start, end) (usage: negative)."""
    c = ledger_entries.c
    stmt = select(func.coalesce(func.sum(c.amount), 0)).where(
        c.account_id == account_id, c.kind == kind, c.created_at >= start, c.created_at < end
    )
    return int((await conn.execute(stmt)).scalar_one())


async def balance_at(conn: AsyncConnection, account_id: str, moment: datetime) -> int:
    """The account's balance just before `moment`: the running balance of its last entry
    created before then (0 without one)."""
    c = ledger_entries.c
    stmt = (
        select(c.balance_after)
        .where(c.account_id == account_id, c.created_at < moment)
        .order_by(c.id.desc())
        .limit(1)
    )
    value = (await conn.execute(stmt)).scalar_one_or_none()
    return 0 if value is None else int(value)
