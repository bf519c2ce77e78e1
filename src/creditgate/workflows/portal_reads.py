"""What the billing portal shows of one account, read from the same domain functions the
APIs use (the portal renders; it decides nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from creditgate.billing import invoices
from creditgate.billing.invoices import InvoicePage, Preview
from creditgate.billing.rows import Card
from creditgate.ledger import service as ledger
from creditgate.ledger.rows import Account
from creditgate.limits import postpaid
from creditgate.limits.postpaid import PostpaidLimits
from creditgate.workflows import cards
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
    postpaid: PostpaidLimits

    @property
    def allowance(self) -> int:
        """How far below zero the balance may go (the effective postpaid limit; 0 prepaid)."""
        return self.postpaid.effective

    @property
    def available(self) -> int:
        """What authorize lets the account spend now (limits.postpaid): balance - held +
        the effective postpaid limit."""
        return self.account.balance - self.account.held + self.allowance


async def balance(ctx: Context, account_id: str) -> Balance:
    """The account's balance, holds, postpaid allowance and unexpired promotional grants."""
    async with ctx.db.read() as conn:
        account = await ledger.get_account(conn, account_id)
        grants = await ledger.unexpired_grants(conn, account_id, ctx.clock())
        postpaid_limits = await postpaid.get_limits(conn, account_id)
    promos = [
        PromoGrant(e.amount, left, e.reason, e.created_at, e.expires_at)
        for e, left in grants
        if e.expires_at is not None
    ]
    return Balance(account, sorted(promos, key=lambda g: g.expires_at), postpaid_limits)


@dataclass(frozen=True)
class Invoices:
    """One page of the account's invoices (newest first) and the current month's draft."""

    page: InvoicePage
    upcoming: Preview


async def invoices_and_upcoming(ctx: Context, account_id: str, *, page: int, per_page: int = 20) -> Invoices:
    async with ctx.db.read() as conn:
        listed = await invoices.list_invoices(conn, account_id, page=page, per_page=per_page)
        upcoming = await invoices.preview(conn, account_id, ctx.clock())
    return Invoices(listed, upcoming)


async def default_card(ctx: Context, account_id: str) -> Card | None:
    """The card a top-up charges when no other is chosen."""
    saved = await cards.list_cards(ctx, account_id)
    return next((card for card in saved if card.is_default), None)
