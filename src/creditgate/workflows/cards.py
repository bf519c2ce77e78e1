"""Saved cards: save one (the processor customer is created on first use), list them, make one
the default, and start a browser card-saving session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from creditgate.billing import cards
from creditgate.billing.rows import Card
from creditgate.errors import ValidationError
from creditgate.ledger import service as ledger
from creditgate.workflows.context import Context


@dataclass(frozen=True)
class SetupSession:
    """A card-saving session for Stripe.js (`confirmCardSetup(client_secret)`)."""

    setup_id: str
    client_secret: str
    customer_id: str
    processor: str


async def _customer(ctx: Context, account_id: str) -> tuple[str, bool]:
    """The account's processor customer id, and whether it was just created."""
    proc = ctx.require_processor()
    async with ctx.db.read() as conn:
        await ledger.get_account(conn, account_id)
        customer = await cards.customer_id(conn, account_id, proc.name)
    if customer is not None:
        return customer, False
    return await proc.create_customer(account_id, idempotency_key=f"customer:{account_id}"), True


async def save_card(ctx: Context, account_id: str, card: Any) -> Card:
    """Save a card on the account's processor customer (created on first use) and make it the
    default. The processor is called outside any transaction; the result is then recorded."""
    if not isinstance(card, str) or not 0 < len(card) <= 100:
        raise ValidationError("card must be a card number (sandbox) or a payment method id", field="card")
    proc = ctx.require_processor()
    customer, _ = await _customer(ctx, account_id)
    saved = await proc.attach_card(customer, card)
    async with ctx.db.write() as conn:  # the new default card also turns auto top-up back on
        return await cards.card_saved(
            conn, account_id, processor=proc.name, customer=customer, card=saved, now=ctx.clock()
        )


async def set_default_card(ctx: Context, account_id: str, payment_method_id: Any) -> Card:
    """Make a saved card the account's default (the one top-ups and auto top-up charge)."""
    if not isinstance(payment_method_id, str) or not 0 < len(payment_method_id) <= 100:
        raise ValidationError(
            "payment_method_id must name one of the account's saved cards", field="payment_method_id"
        )
    async with ctx.db.write() as conn:
        return await cards.set_default_card(conn, account_id, payment_method_id, ctx.clock())


async def list_cards(ctx: Context, account_id: str) -> list[Card]:
    async with ctx.db.read() as conn:
        return await cards.list_cards(conn, account_id)


async def start_card_setup(ctx: Context, account_id: str) -> SetupSession:
    """Start a browser card-saving session (Stripe SetupIntent, usage off_session)."""
    proc = ctx.require_processor()
    customer, created = await _customer(ctx, account_id)
    if created:
        async with ctx.db.write() as conn:
            await cards.record_customer(
                conn, account_id, processor=proc.name, customer=customer, now=ctx.clock()
            )
    session = await proc.create_setup_session(customer)
    return SetupSession(session.setup_id, session.client_secret, customer, proc.name)
