"""Proof that the books balance: every cached balance equals the sum of its entries, and the
usage debits of every account equal the cost of its stored usage events."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.ledger import service as ledger
from creditgate.metering import service as metering
from creditgate.money import to_usd_string


async def reconcile_report(conn: AsyncConnection) -> dict[str, Any]:
    """A JSON-ready report; `ok` is False when any check fails."""
    checked, mismatches = await ledger.reconcile(conn)
    problems: list[dict[str, Any]] = [
        {
            "account_id": m.account_id,
            "check": "balance == sum(entries) == last running balance",
            "cached_usd": to_usd_string(m.cached_balance),
            "entries_usd": to_usd_string(m.sum_of_entries),
            "running_usd": to_usd_string(m.last_running_balance),
        }
        for m in mismatches
    ]
    debited = await ledger.total_by_kind(conn, "usage")
    metered = await metering.usage_totals(conn)
    for account_id in sorted(set(debited) | set(metered)):
        charged, cost = -debited.get(account_id, 0), metered.get(account_id, 0)
        if charged != cost:
            problems.append(
                {
                    "account_id": account_id,
                    "check": "usage debits == sum(usage event costs)",
                    "debited_usd": to_usd_string(charged),
                    "events_usd": to_usd_string(cost),
                }
            )
    return {"ok": not problems, "accounts_checked": checked, "problems": problems}
