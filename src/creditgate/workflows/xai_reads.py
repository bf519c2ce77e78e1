"""Reads behind the xAI Management API's billing routes: a team's billing info, saved cards,
invoices and prepaid balance changes. Each is one read transaction over the domains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from creditgate.billing import balance_view, billing_info, cards, cycle, invoice_listing
from creditgate.billing.balance_view import BalanceView
from creditgate.billing.billing_info import BillingInfo
from creditgate.billing.cycle import CycleLine
from creditgate.billing.invoice_listing import ListedInvoice
from creditgate.billing.rows import Card, Profile
from creditgate.ledger import service as ledger
from creditgate.money import to_whole_cents
from creditgate.workflows.context import Context


@dataclass(frozen=True)
class InvoiceView:
    listed: ListedInvoice
    lines: list[CycleLine]


@dataclass(frozen=True)
class TeamBalance:
    view: BalanceView
    processor: str | None  # the processor of the account's cards, if it has any


async def team_billing_info(ctx: Context, team_id: str) -> BillingInfo | None:
    """The team's billing info, or None when it never set any."""
    async with ctx.db.read() as conn:
        await ledger.get_account(conn, team_id)
        return await billing_info.get_info(conn, team_id)


async def payment_methods(ctx: Context, team_id: str) -> list[Card]:
    """The team's saved cards, the default first, then in the order they were saved."""
    async with ctx.db.read() as conn:
        saved = await cards.list_cards(conn, team_id)
    return sorted(saved, key=lambda card: not card.is_default)


def _statement_lines(ctx: Context, listed: ListedInvoice) -> list[CycleLine]:
    """A statement's usage per provider/model split into unit types at the catalog price in
    force when its period began, and a correction line to the month's ledger usage
    (billing.cycle)."""
    if listed.statement is None:
        return []
    lines = cycle.unit_lines(ctx.catalog, listed.statement.lines, cycle.cycle_start(*listed.cycle))
    return cycle.with_correction(lines, to_whole_cents(listed.statement.usage))


async def team_invoices(
    ctx: Context,
    team_id: str,
    *,
    invoice_ids: Sequence[str] | None = None,
    cycle: tuple[int, int] | None = None,
    since: tuple[int, int] | None = None,
) -> list[InvoiceView]:
    """The team's invoices, newest first, statements with their lines by unit type. Only those
    in `invoice_ids`, of billing cycle `cycle` (year, month), or of `since` and later."""
    async with ctx.db.read() as conn:
        await ctx.catalog.refresh(conn)
        listed = await invoice_listing.list_all(conn, team_id, invoice_ids)
    listed = [
        item
        for item in listed
        if (cycle is None or item.cycle == cycle) and (since is None or item.cycle >= since)
    ]
    return [InvoiceView(item, _statement_lines(ctx, item)) for item in listed]


async def prepaid_balance(ctx: Context, team_id: str) -> TeamBalance:
    """The team's prepaid balance and every change to it, oldest first."""
    async with ctx.db.read() as conn:
        view = await balance_view.balance_view(conn, team_id, ctx.clock())
        profile: Profile | None = await cards.get_profile(conn, team_id)
    return TeamBalance(view, profile.processor if profile else None)
