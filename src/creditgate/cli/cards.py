"""`creditgate cards ...` (saved cards) and `creditgate sandbox ...` (the built-in processor)."""

from __future__ import annotations

from typing import Any

import typer

from creditgate.cli.runtime import emit, run
from creditgate.errors import NotFound
from creditgate.payments.sandbox import SandboxProcessor
from creditgate.views import card_view
from creditgate.workflows import Context, cards

cards_app = typer.Typer(help="Saved cards (the default card pays for top-ups).", no_args_is_help=True)
sandbox_app = typer.Typer(help="The built-in sandbox card processor (no real money).", no_args_is_help=True)


@cards_app.command("add")
def cards_add(account_id: str, card_number: str) -> None:
    """Save a card on the account and make it the default. With the sandbox processor use a
    Stripe test card, e.g. 4242424242424242 (see `creditgate sandbox cards`)."""

    async def work(ctx: Context) -> Any:
        card = await cards.save_card(ctx, account_id, card_number)
        return card_view(card, ctx.require_processor().name)

    emit(run(work))


@cards_app.command("list")
def cards_list(account_id: str) -> None:
    """List the account's saved cards."""

    async def work(ctx: Context) -> Any:
        return [card_view(c, ctx.settings.payments) for c in await cards.list_cards(ctx, account_id)]

    emit(run(work))


@sandbox_app.command("cards")
def sandbox_cards() -> None:
    """The test cards the sandbox accepts and what each one does."""
    from creditgate.payments.sandbox import TEST_CARDS

    emit(
        [
            {"card": n, "brand": c.brand, "behaviour": c.behaviour, "decline_code": c.decline_code}
            for n, c in TEST_CARDS.items()
        ]
    )


@sandbox_app.command("authenticate")
def sandbox_authenticate(
    client_secret: str,
    fail_auth: bool = typer.Option(False, "--fail", help="Fail the 3-D Secure step instead."),
) -> None:
    """Complete the 3-D Secure step of a pending sandbox top-up (its client_secret)."""

    async def work(ctx: Context) -> Any:
        proc = ctx.processor
        if not isinstance(proc, SandboxProcessor):
            raise NotFound("CREDITGATE_PAYMENTS is not sandbox: there is no sandbox payment to authenticate")
        result = await proc.authenticate(client_secret, succeed=not fail_auth)
        return {"payment_id": result.payment_id, "status": result.status, "failure_code": result.failure_code}

    emit(run(work))
