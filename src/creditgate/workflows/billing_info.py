"""A customer's invoice billing info (the buyer block of its invoices), for every front door:
read it, and replace it."""

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


async def set_billing_info(ctx: Context, account_id: str, fields: Mapping[str, object]) -> BillingInfo:
    """Replace the account's billing info in one transaction; a ValidationError (bad country,
    unknown tax id type, ...) changes nothing."""
    async with ctx.db.write() as conn:
        return await billing_info.set_info(conn, account_id, fields, ctx.clock())
