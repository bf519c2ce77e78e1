"""`creditgate cards ...` (saved cards) and `creditgate sandbox ...` (the built-in processor)."""

from __future__ import annotations

from typing import Any

import typer

from creditgate.api.admin_billing import card_view, save_card
from creditgate.billing import service as billing
from creditgate.cli.runtime import emit, run
from creditgate.clock import system_clock
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.errors import NotFound
from creditgate.payments.factory import make_processor
from creditgate.payments.sandbox import SandboxProcessor

cards_app = typer.Typer(help="Saved cards (the default card pays for top-ups).", no_args_is_help=True)
sandbox_app = typer.Typer(help="The built-in sandbox card processor (no real money).", no_args_is_help=True)


@cards_app.command("add")
def cards_add(account_id: str, card_number: str) -> None:
    """Save a card on the account and make it the default. With the sandbox processor use a
    Stripe test card, e.g. 4242424242424242 (see `creditgate sandbox cards`)."""

    async def work(db: Database) -> Any:
        proc = make_processor(Settings.from_env(), db)
        card = await save_card(db, proc, account_id, card_number, system_clock())
        return card_view(card, proc.name)

    emit(run(work))


@cards_app.command("list")
def cards_list(account_id: str) -> None:
    """List the account's saved cards."""

    async def work(db: Database) -> Any:
        name = Settings.from_env().payments
        async with db.read() as conn:
            return [card_view(c, name) for c in await billing.list_cards(conn, account_id)]

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

    async def work(db: Database) -> Any:
        proc = make_processor(Settings.from_env(), db)
        if not isinstance(proc, SandboxProcessor):
            raise NotFound("CREDITGATE_PAYMENTS is not sandbox: there is no sandbox payment to authenticate")
        result = await proc.authenticate(client_secret, succeed=not fail_auth)
        return {"payment_id": result.payment_id, "status": result.status, "failure_code": result.failure_code}

    emit(run(work))
