"""What the billing portal shows of one account, read from the same domain functions the
APIs use (the portal renders; it decides nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from creditgate.ledger import service as ledger
from creditgate.ledger.rows import Account
from creditgate.workflows.context import Context


@dataclass(frozen=True)
class PromoGrant:
    """A promotional grant that has not expired yet, and how much of it is left."""

    amount: int
    remaining: int
    reason: str | None
    granted_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Balance:
    account: Account
    grants: list[PromoGrant]


async def balance(ctx: Context, account_id: str) -> Balance:
    """The account's balance, holds, postpaid allowance and unexpired promotional grants."""
    async with ctx.db.read() as conn:
        account = await ledger.get_account(conn, account_id)
        grants = await ledger.unexpired_grants(conn, account_id, ctx.clock())
    promos = [
        PromoGrant(e.amount, left, e.reason, e.created_at, e.expires_at)
        for e, left in grants
        if e.expires_at is not None
    ]
    return Balance(account, sorted(promos, key=lambda g: g.expires_at))
