"""Reads behind the xAI Management API's billing routes: a team's billing info, saved cards,
invoices and prepaid balance changes. Each is one read transaction over the domains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from creditgate.billing import balance_view, billing_info, invoice_listing
from creditgate.billing import service as billing
from creditgate.billing.balance_view import BalanceView
from creditgate.billing.billing_info import BillingInfo
from creditgate.billing.invoice_listing import ListedInvoice
from creditgate.billing.service import Card, Profile
from creditgate.ledger import service as ledger
from creditgate.metering import unit_types
from creditgate.workflows.context import Context


@dataclass(frozen=True)
class InvoiceLine:
    cluster: str  # the provider
    description: str  # the model
    unit_type: str
    unit_price: int  # 1e-10 USD per unit
    units: int
    cost: int  # ledger units


@dataclass(frozen=True)
class InvoiceView:
    listed: ListedInvoice
    lines: list[InvoiceLine]


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
        cards = await billing.list_cards(conn, team_id)
    return sorted(cards, key=lambda card: not card.is_default)


def _statement_lines(ctx: Context, listed: ListedInvoice) -> list[InvoiceLine]:
    """A statement's usage per provider/model split into unit types at the catalog price in
    force when its period began; a line for late usage of earlier periods keeps its total."""
    if listed.statement is None:
        return []
    year, month = listed.cycle
    at = datetime(year, month, 1, tzinfo=UTC)
    lines = []
    for line in listed.statement.lines:
        if line.get("late"):
            text = "Usage of earlier periods reported after they closed"
            lines.append(InvoiceLine("", text, "", 0, 0, int(line["cost"])))
            continue
        price = unit_types.price_at(ctx.catalog, line["provider"], line["model"], at)
        parts = unit_types.split(
            price,
            input_tokens=int(line["input_tokens"]),
            cached_tokens=int(line.get("cached_tokens", 0)),
            output_tokens=int(line["output_tokens"]),
            events=int(line["events"]),
            cost=int(line["cost"]),
        )
        for part in parts:
            lines.append(
                InvoiceLine(
                    line["provider"], line["model"], part.unit_type, part.unit_price, part.units, part.cost
                )
            )
    return lines


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
        profile: Profile | None = await billing.get_profile(conn, team_id)
    return TeamBalance(view, profile.processor if profile else None)
