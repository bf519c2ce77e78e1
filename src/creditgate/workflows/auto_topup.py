"""Auto top-up configuration: read, set (with its monthly cap) and delete. The charging of
queued auto top-ups is in workflows.topup (run_auto_topups)."""

from __future__ import annotations

from typing import Any

from creditgate.billing import autotopup_config
from creditgate.billing.autotopup_config import AutoTopupState
from creditgate.billing.rows import TopupConfig
from creditgate.ledger import service as ledger
from creditgate.workflows.context import Context


async def get_config(ctx: Context, account_id: str) -> TopupConfig:
    """The account's config (an empty one when auto top-up is off)."""
    async with ctx.db.read() as conn:
        await ledger.get_account(conn, account_id)
        return await autotopup_config.get_topup_config(conn, account_id)


async def get_state(ctx: Context, account_id: str) -> AutoTopupState:
    """Config, monthly cap and spend, failures, and the top-up in flight."""
    async with ctx.db.read() as conn:
        return await autotopup_config.get_state(conn, account_id, ctx.clock())


async def set_config(
    ctx: Context,
    account_id: str,
    *,
    amount: Any,
    threshold: Any,
    change_cap: bool = False,
    monthly_cap: Any = None,
) -> AutoTopupState:
    """Set the config (re-enables auto top-up after failures). With `change_cap`, also set
    the monthly cap in cents (None removes it); without, the current cap is kept."""
    now = ctx.clock()
    async with ctx.db.write() as conn:
        await autotopup_config.set_topup_config(conn, account_id, amount=amount, threshold=threshold, now=now)
        if change_cap:
            await autotopup_config.set_monthly_cap(conn, account_id, monthly_cap, now)
        return await autotopup_config.get_state(conn, account_id, now)


async def delete_config(ctx: Context, account_id: str) -> bool:
    """Remove the config; False when there was none (still a success)."""
    async with ctx.db.write() as conn:
        await ledger.lock(conn, [account_id])
        return await autotopup_config.delete_topup_config(conn, account_id)
