"""Proof that the books balance: every cached balance equals the sum of its entries, the
usage debits of every account equal the cost of its applied rollups, and, over the months
whose raw events are all kept (all of them unless the retention dropped some), the debits
plus the usage waiting for the applier equal the cost of its stored usage events, the top-up
credits of every account equal its paid top-up invoices, and every account's `held` equals
the sum of its open holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import repository as billing_repo
from creditgate.ledger import service as ledger
from creditgate.limits import service as limits
from creditgate.metering import retention
from creditgate.money import UNITS_PER_CENT, to_usd_string


async def reconcile_report(conn: AsyncConnection, raw_event_cutoff: datetime | None = None) -> dict[str, Any]:
    """A JSON-ready report; `ok` is False when any check fails. `raw_event_cutoff`: raw usage
    events before it may have been dropped (CREDITGATE_RAW_EVENT_RETENTION_MONTHS)."""
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
    problems.extend(await _usage_problems(conn, raw_event_cutoff))
    problems.extend(await _topup_problems(conn))
    problems.extend(
        {
            "account_id": m.account_id,
            "check": "held == sum(open holds)",
            "held_usd": to_usd_string(m.held),
            "open_holds_usd": to_usd_string(m.open_holds),
        }
        for m in await limits.held_mismatches(conn)
    )
    return {"ok": not problems, "accounts_checked": checked, "problems": problems}


async def _usage_problems(conn: AsyncConnection, raw_event_cutoff: datetime | None) -> list[dict[str, Any]]:
    """The usage debits equal the applied rollups, and since raw events are all kept (every
    one when none was dropped), the debits plus the usage still pending equal the events."""
    problems: list[dict[str, Any]] = []
    debited = await ledger.total_by_kind(conn, "usage")
    costs = await retention.usage_costs(conn, raw_event_cutoff)
    for account_id in sorted(set(debited) | set(costs.applied)):
        charged, applied = -debited.get(account_id, 0), costs.applied.get(account_id, 0)
        if charged != applied:
            problems.append(
                {
                    "account_id": account_id,
                    "check": "usage debits == sum(usage rollup costs)",
                    "debited_usd": to_usd_string(charged),
                    "rollups_usd": to_usd_string(applied),
                }
            )
    since = "" if costs.since is None else f" since {costs.since.isoformat()}"
    for account_id in sorted(set(costs.events) | set(costs.hours) | set(costs.pending)):
        charged = costs.hours.get(account_id, 0) + costs.pending.get(account_id, 0)
        cost = costs.events.get(account_id, 0)
        if charged != cost:
            problems.append(
                {
                    "account_id": account_id,
                    "check": f"usage debits{since} == sum(usage event costs{since})",
                    "debited_usd": to_usd_string(charged),
                    "events_usd": to_usd_string(cost),
                }
            )
    return problems


async def _topup_problems(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Top-up credits in the ledger == paid top-up invoices, and every top-up agrees with its
    invoice (completed <-> paid)."""
    problems: list[dict[str, Any]] = []
    credited = await ledger.total_by_kind(conn, "topup")
    paid = await billing_repo.paid_topup_totals(conn)
    for account_id in sorted(set(credited) | set(paid)):
        units, paid_units = credited.get(account_id, 0), paid.get(account_id, 0) * UNITS_PER_CENT
        if units != paid_units:
            problems.append(
                {
                    "account_id": account_id,
                    "check": "topup credits == paid top-up invoices",
                    "credited_usd": to_usd_string(units),
                    "invoiced_usd": to_usd_string(paid_units),
                }
            )
    for row in await billing_repo.inconsistent_topups(conn):
        problems.append(
            {
                "account_id": row.account_id,
                "check": "top-up completed <-> invoice paid",
                "topup_id": row.id,
                "topup_status": row.status,
                "invoice_status": row.invoice_status,
            }
        )
    return problems
