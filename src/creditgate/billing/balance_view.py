"""The prepaid balance as a list of changes, a view over the ledger and the top-ups.

Each credit or debit of the ledger is one change, except usage, which is one SPEND change per
UTC calendar month (the billing cycle): the prepaid part of the month's usage (billing.cycle).
A closed month's SPEND is the one its statement recorded (usage - due), so it never moves;
the open months' are computed the same way, live. The postpaid part of the usage is billed on
the monthly invoice instead, and the card payments of monthly invoices (ledger kind
`payment`) are not prepaid changes either. Top-ups not (yet) paid are listed with their
status but move no money. Amounts are ledger units, credit positive, as in the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import cycle
from creditgate.billing.invoices import month_bounds
from creditgate.billing.models import invoices, statements, topups
from creditgate.ledger import history
from creditgate.ledger import service as ledger
from creditgate.money import cents

# ledger entry kind -> change origin (top-ups are "purchase" or "auto_purchase" by origin)
ORIGINS = {"grant": "manual", "adjustment": "manual", "expiry": "manual", "refund": "refund"}
POSTPAID_PAYMENT = "payment"  # ledger kind of a monthly invoice's card payment
TOPUP_STATES = {"created": "to_charge", "pending": "to_charge", "failed": "failed_to_charge"}


@dataclass(frozen=True)
class BalanceChange:
    origin: str  # purchase | auto_purchase | spend | refund | manual
    amount: int  # ledger units, credit positive (a paid top-up is positive, usage negative)
    created_at: datetime | None  # None for a month's usage
    topup_status: str | None = None  # to_charge | failed_to_charge | succeeded (top-ups only)
    invoice_id: str | None = None
    invoice_number: str | None = None
    period: tuple[int, int] | None = None  # (year, month) of a usage change
    counted: bool = True  # False for a top-up that moved no money
    sort_key: datetime | None = None  # when it happened, or when a month's usage ends


@dataclass(frozen=True)
class BalanceView:
    account_id: str
    balance: int  # ledger units: the ledger balance (the counted changes but unpaid postpaid usage)
    changes: list[BalanceChange]


async def _topups(conn: AsyncConnection, account_id: str, *where: Any) -> dict[str, Any]:
    stmt = (
        select(
            topups.c.id,
            topups.c.origin,
            topups.c.status,
            topups.c.amount,
            topups.c.created_at,
            topups.c.completed_at,
            topups.c.invoice_id,
            invoices.c.number,
        )
        .join(
            invoices, and_(invoices.c.id == topups.c.invoice_id, invoices.c.account_id == topups.c.account_id)
        )
        .where(topups.c.account_id == account_id, *where)
    )
    return {row.id: row for row in await conn.execute(stmt)}


async def topup_change(conn: AsyncConnection, account_id: str, topup_id: str) -> BalanceChange:
    """One top-up of the account as `balance_view` lists it: paid, its credit when it was
    posted; otherwise its status, moving no money."""
    row = (await _topups(conn, account_id, topups.c.id == topup_id))[topup_id]
    if row.status == "completed":
        return _topup_change(row, cents(int(row.amount)), row.completed_at, "succeeded", True)
    return _topup_change(row, cents(int(row.amount)), row.created_at, TOPUP_STATES[row.status], False)


def _topup_change(row: Any, amount: int, created_at: datetime, status: str, counted: bool) -> BalanceChange:
    return BalanceChange(
        origin="auto_purchase" if row.origin == "auto" else "purchase",
        amount=amount,
        created_at=created_at,
        topup_status=status,
        invoice_id=row.invoice_id,
        invoice_number=row.number,
        counted=counted,
        sort_key=created_at,
    )


async def _closed_months(conn: AsyncConnection, account_id: str) -> dict[datetime, int]:
    """period start -> the prepaid part (ledger units, positive) of each month closed with
    its ledger usage recorded (migration 0013 on)."""
    s = statements.c
    stmt = select(s.period_start, s.usage, s.due).where(s.account_id == account_id, s.usage.is_not(None))
    return {row.period_start: int(row.usage) - int(row.due) for row in await conn.execute(stmt)}


async def balance_view(conn: AsyncConnection, account_id: str, now: datetime) -> BalanceView:
    """Every change of the account's prepaid balance, oldest first, and the balance."""
    account = await ledger.get_account(conn, account_id)
    by_id = await _topups(conn, account_id)
    changes: list[BalanceChange] = []
    for entry in await history.entries_except(conn, account_id):
        if entry.kind == POSTPAID_PAYMENT:
            continue
        topup = by_id.pop(entry.ref[6:], None) if entry.ref and entry.ref.startswith("topup:") else None
        if topup is not None:
            changes.append(_topup_change(topup, entry.amount, entry.created_at, "succeeded", True))
            continue
        origin = ORIGINS.get(entry.kind, "purchase" if entry.kind == "topup" else "manual")
        changes.append(BalanceChange(origin, entry.amount, entry.created_at, sort_key=entry.created_at))
    for row in by_id.values():  # top-ups that posted nothing (yet)
        status = TOPUP_STATES.get(row.status)
        if status is not None:
            changes.append(_topup_change(row, cents(int(row.amount)), row.created_at, status, False))
    closed = await _closed_months(conn, account_id)
    for month in await history.monthly_totals(conn, account_id):
        start, end = month_bounds(datetime(month.year, month.month, 1, tzinfo=UTC))
        spend = closed.get(start)
        if spend is None:  # not closed yet: the prepaid part at the balance so far
            balance = int(account.balance) if end > now else await history.balance_at(conn, account_id, end)
            usage = -month.amount
            spend = usage - cycle.postpaid_part(account.mode, usage, balance)
        changes.append(
            BalanceChange("spend", -spend, None, period=(month.year, month.month), sort_key=min(end, now))
        )
    changes.sort(key=lambda change: change.sort_key or now)
    return BalanceView(account_id, int(account.balance), changes)
