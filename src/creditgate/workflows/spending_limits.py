"""Postpaid spending limits, for every front door: the operator's hard limit (admin API, CLI)
and the customer's soft limit (xAI API), in whole cents. The rules are limits.postpaid's."""

from __future__ import annotations

from creditgate.limits import postpaid
from creditgate.limits.postpaid import PostpaidLimits
from creditgate.money import cents
from creditgate.workflows.context import Context


async def get_limits(ctx: Context, account_id: str) -> PostpaidLimits:
    """The account's hard, soft and effective limits (NotFound for an unknown account)."""
    async with ctx.db.read() as conn:
        return await postpaid.get_limits(conn, account_id)


async def set_hard_limit(ctx: Context, account_id: str, amount_cents: int) -> PostpaidLimits:
    """Set the operator's ceiling; 0 makes the account prepaid only. A ValidationError (a
    negative amount, a limit above 0 on a prepaid account) changes nothing."""
    async with ctx.db.write() as conn:
        return await postpaid.set_hard_limit(conn, account_id, cents(amount_cents))


async def set_soft_limit(ctx: Context, account_id: str, amount_cents: int) -> PostpaidLimits:
    """Set the customer's own limit, 0 (prepaid only) up to the hard limit; a ValidationError
    changes nothing."""
    async with ctx.db.write() as conn:
        return await postpaid.set_soft_limit(conn, account_id, cents(amount_cents))
