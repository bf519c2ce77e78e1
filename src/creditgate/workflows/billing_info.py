"""A customer's invoice billing info (the buyer printed on its invoices): read and replace."""

from __future__ import annotations

from collections.abc import Mapping

from creditgate.billing import billing_info
from creditgate.billing.billing_info import BillingInfo
from creditgate.ledger import service as ledger
from creditgate.workflows.context import Context


async def get_info(ctx: Context, account_id: str) -> BillingInfo | None:
    """The account's billing info; None when none was set (NotFound when there is no account)."""
    async with ctx.db.read() as conn:
        await ledger.get_account(conn, account_id)
        return await billing_info.get_info(conn, account_id)


async def set_info(ctx: Context, account_id: str, body: Mapping[str, object]) -> BillingInfo:
    """Replace the whole record (a field left out is cleared)."""
    async with ctx.db.write() as conn:
        return await billing_info.set_info(conn, account_id, body, ctx.clock())
