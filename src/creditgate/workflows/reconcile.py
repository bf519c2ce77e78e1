"""Prove the books: the reconcile report the admin API and `creditgate reconcile` print."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from creditgate.billing.reconcile import reconcile_report
from creditgate.ledger import models as ledger_models
from creditgate.metering.retention import retention_cutoff
from creditgate.workflows.context import Context


def _quiet(message: str) -> None:
    del message


async def reconcile(ctx: Context, *, progress: Callable[[str], None] = _quiet) -> dict[str, Any]:
    """A JSON-ready report; `ok` is False when any check fails."""
    async with ctx.db.read() as conn:
        count = await conn.scalar(select(func.count()).select_from(ledger_models.accounts))
        progress(f"reconcile: checking {count} account(s)")
        cutoff = retention_cutoff(ctx.clock(), ctx.settings.raw_event_retention_months)
        return await reconcile_report(conn, cutoff)
