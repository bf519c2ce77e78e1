"""After a debit: queue the auto top-up of every account it took under its threshold."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup

if TYPE_CHECKING:
    from creditgate.workflows.context import Context


async def after_debits(
    ctx: Context, conn: AsyncConnection, debits: Iterable[tuple[str, int]], now: datetime
) -> None:
    """Sum the debits (account_id, units) per account and queue one charge for each debited
    account now under its threshold (the `auto_topups` job makes the charge). Every debit path
    (usage reports, hold settlement) calls it in the debit's own transaction, after the ledger
    moved and with the accounts still locked."""
    debited: dict[str, int] = {}
    for account_id, units in debits:
        debited[account_id] = debited.get(account_id, 0) + units
    name = ctx.processor.name if ctx.processor is not None else None
    accounts = [a for a, units in debited.items() if units > 0]
    await autotopup.after_debit(conn, accounts, now, name, ctx.seller)
