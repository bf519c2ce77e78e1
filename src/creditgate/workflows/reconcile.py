"""Prove the books: the reconcile report the admin API and `creditgate reconcile` print."""

from __future__ import annotations

from typing import Any

from creditgate.billing.reconcile import reconcile_report
from creditgate.workflows.context import Context


async def reconcile(ctx: Context) -> dict[str, Any]:
    """A JSON-ready report; `ok` is False when any check fails."""
    async with ctx.db.read() as conn:
        return await reconcile_report(conn)
