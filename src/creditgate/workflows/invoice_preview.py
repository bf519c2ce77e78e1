"""The postpaid invoice preview (xAI `GetAmountToPay`): the current billing cycle computed
live, and the tax in its postpaid part."""

from __future__ import annotations

from dataclasses import dataclass

from creditgate.billing import cycle, tax
from creditgate.billing.cycle import CyclePreview
from creditgate.billing.tax import TaxSplit
from creditgate.workflows.context import Context


@dataclass(frozen=True)
class InvoicePreview:
    cycle: CyclePreview
    postpaid: TaxSplit  # the postpaid part (tax-inclusive) split with the configured tax rate


async def invoice_preview(ctx: Context, team_id: str) -> InvoicePreview:
    """The team's current cycle: lines, usage, prepaid credit used, postpaid part, limit."""
    async with ctx.db.read() as conn:
        await ctx.catalog.refresh(conn)
        found = await cycle.preview(conn, ctx.catalog, team_id, ctx.clock())
    return InvoicePreview(found, tax.split(found.due, ctx.seller.tax_rate_bps))
