"""A billing cycle (a UTC calendar month) of an account as a postpaid invoice shows it.

* Its usage is the usage the ledger debited in the cycle (entries posted in the month).
* Its lines are the usage rollups of the month per provider x model x unit type, each
  rounded to the cent, plus a correction line: the lines then add up to the cycle's usage
  rounded to the cent. The correction covers the rounding of the lines and usage posted in
  another month than it occurred in (late reports, a call crossing midnight).
* Prepaid credit is used first; the postpaid part is what the balance does not cover,
  `min(usage, max(0, -balance))`, for postpaid accounts only (a prepaid account's overdraft is
  taken from its next top-up). The statement job bills the same formula at the balance of
  the cycle's end (billing.statements).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.invoices import month_bounds
from creditgate.ledger import history
from creditgate.ledger import service as ledger
from creditgate.limits import postpaid as postpaid_limits
from creditgate.metering import service as metering
from creditgate.metering import unit_types
from creditgate.metering.catalog import PriceCatalog
from creditgate.money import to_whole_cents

CORRECTION = "Correction (rounding, usage posted in another cycle)"
LATE = "Usage of earlier periods reported after they closed"


@dataclass(frozen=True)
class CycleLine:
    cluster: str  # the provider
    description: str  # the model
    unit_type: str
    unit_price: int  # 1e-10 USD per unit (metering.unit_types)
    units: int
    cents: int  # the line's cost rounded to the cent


@dataclass(frozen=True)
class CyclePreview:
    """The current cycle so far, in cents (spend positive)."""

    account_id: str
    cycle: tuple[int, int]  # (year, month)
    lines: list[CycleLine]  # they add up to total
    total: int  # the usage the ledger debited in the cycle, rounded to the cent
    due: int  # the postpaid part (tax included)
    prepaid_used: int  # total - due
    prepaid_credits: int  # the prepaid credit the cycle drew on: used + left, rounded once
    spending_limit: int  # ledger units: the effective postpaid limit (limits.postpaid)


def usage_line(row: Any) -> dict[str, Any]:
    """A rollup row of one provider/model (metering.service.usage_by_model) as a stored
    statement line."""
    return {
        "provider": row.provider,
        "model": row.model,
        "events": int(row.events),
        "input_tokens": int(row.input_tokens),
        "output_tokens": int(row.output_tokens),
        "cached_tokens": int(row.cached_tokens),
        "cost": int(row.cost),
    }


def unit_lines(catalog: PriceCatalog, rows: Iterable[dict[str, Any]], at: datetime) -> list[CycleLine]:
    """Statement lines (per provider/model, or late usage) split into unit types at the
    catalog price in force at `at`; a late-usage line keeps its total."""
    out = []
    for row in rows:
        if row.get("late"):
            out.append(CycleLine("", LATE, "", 0, 0, to_whole_cents(int(row["cost"]))))
            continue
        price = unit_types.price_at(catalog, row["provider"], row["model"], at)
        parts = unit_types.split(
            price,
            input_tokens=int(row["input_tokens"]),
            cached_tokens=int(row.get("cached_tokens", 0)),
            output_tokens=int(row["output_tokens"]),
            events=int(row["events"]),
            cost=int(row["cost"]),
        )
        for part in parts:
            out.append(
                CycleLine(
                    row["provider"],
                    row["model"],
                    part.unit_type,
                    part.unit_price,
                    part.units,
                    to_whole_cents(part.cost),
                )
            )
    return out


def with_correction(lines: list[CycleLine], total_cents: int) -> list[CycleLine]:
    """The lines and, unless they already add up to `total_cents`, a correction line."""
    correction = total_cents - sum(line.cents for line in lines)
    return [*lines, CycleLine("", CORRECTION, "", 0, 0, correction)] if correction else lines


def postpaid_part(mode: str, usage: int, balance: int) -> int:
    """The part of a cycle's usage (ledger units) the balance does not cover; 0 for prepaid."""
    return min(usage, max(0, -balance)) if mode == "postpaid" and usage > 0 else 0


async def cycle_usage(conn: AsyncConnection, account_id: str, start: datetime, end: datetime) -> int:
    """The usage the ledger debited in [start, end), ledger units (positive)."""
    return -await history.posted_between(conn, account_id, start, end)


async def preview(
    conn: AsyncConnection, catalog: PriceCatalog, account_id: str, now: datetime
) -> CyclePreview:
    """The cycle of `now` computed live from the rollups and the ledger."""
    account = await ledger.get_account(conn, account_id)
    start, end = month_bounds(now)
    rows = [usage_line(r) for r in await metering.usage_by_model(conn, account_id, start, end)]
    usage = await cycle_usage(conn, account_id, start, end)
    balance = int(account.balance)
    postpaid = postpaid_part(account.mode, usage, balance)
    total, due = to_whole_cents(usage), to_whole_cents(postpaid)
    lines = with_correction(unit_lines(catalog, (r for r in rows if r["events"] or r["cost"]), start), total)
    return CyclePreview(
        account_id,
        (start.year, start.month),
        lines,
        total,
        due,
        total - due,
        # the credit the cycle drew on, rounded once from the exact amounts (4500, not 73 + 4428)
        to_whole_cents(usage - postpaid + max(0, balance)),
        await postpaid_limits.effective_spending_limit(conn, account_id),
    )


def cycle_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)
