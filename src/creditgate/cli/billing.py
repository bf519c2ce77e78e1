"""`creditgate topups ...` (list, create, refund) and `creditgate autotopup ...` (show, set, off)."""

from __future__ import annotations

from typing import Any

import typer

from creditgate.cli.runtime import emit, run
from creditgate.views import auto_topup_summary, refund_view, topup_view
from creditgate.workflows import Context, auto_topup, topup
from creditgate.workflows import refund as refunds

topups_app = typer.Typer(help="Top-ups and their refunds.", no_args_is_help=True)
autotopup_app = typer.Typer(help="Auto top-up: state, config, monthly cap.", no_args_is_help=True)


@topups_app.command("list")
def topups_list(account_id: str, limit: int = typer.Option(20, help="How many, newest first.")) -> None:
    """List an account's top-ups with what was refunded."""

    async def work(ctx: Context) -> Any:
        return [
            topup_view(t.topup, t.refunds) for t in await refunds.list_topups(ctx, account_id, limit=limit)
        ]

    emit(run(work))


@topups_app.command("create")
def topups_create(
    account_id: str,
    amount_cents: int,
    payment_method_id: str = typer.Option(None, help="The saved card to charge (default: the default card)."),
    key: str = typer.Option(None, "--idempotency-key", help="The same key is the same top-up."),
) -> None:
    """Charge the account's saved card for credit. Without a key every call is a new purchase."""

    async def work(ctx: Context) -> Any:
        request = topup.TopupRequest(
            account_id, amount=amount_cents, payment_method_id=payment_method_id, request_key=key
        )
        return topup_view((await topup.create_topup(ctx, request)).topup, [])

    emit(run(work))


@topups_app.command("refund")
def topups_refund(
    account_id: str,
    topup_id: str,
    amount_cents: int = typer.Option(None, help="Cents to refund (default: all not yet refunded)."),
    reason: str = typer.Option(None, help="Why (kept with the refund)."),
) -> None:
    """Refund a completed top-up; its credit is taken out of the ledger. Repeating a full
    refund refunds nothing more."""

    async def work(ctx: Context) -> Any:
        done = await refunds.refund_topup(
            ctx, account_id, topup_id, amount=amount_cents, reason=reason, request_key=None
        )
        return {
            "topup": topup_view(done.topup, done.refunds),
            "refund": refund_view(done.made) if done.made else None,
        }

    emit(run(work))


@autotopup_app.command("show")
def autotopup_show(account_id: str) -> None:
    """The account's auto top-up state (idle, in_flight, backoff, capped, paused, disabled)."""

    async def work(ctx: Context) -> Any:
        return auto_topup_summary(await auto_topup.get_state(ctx, account_id))

    emit(run(work))


@autotopup_app.command("set")
def autotopup_set(
    account_id: str,
    amount_cents: int = typer.Option(..., help="Cents charged per auto top-up (>= 1000)."),
    threshold_cents: int = typer.Option(..., help="Top up when the balance falls below this (>= 500)."),
    monthly_cap_cents: int = typer.Option(None, help="At most this many cents of auto top-ups a month."),
    no_cap: bool = typer.Option(False, "--no-cap", help="Remove the monthly cap."),
) -> None:
    """Configure auto top-up (also turns it back on after failures)."""

    async def work(ctx: Context) -> Any:
        state = await auto_topup.set_config(
            ctx,
            account_id,
            amount=amount_cents,
            threshold=threshold_cents,
            change_cap=no_cap or monthly_cap_cents is not None,
            monthly_cap=None if no_cap else monthly_cap_cents,
        )
        return {
            "amount": state.config.amount,
            "threshold": state.config.threshold,
            "monthly_cap": monthly_cap_cents,
        }

    emit(run(work))


@autotopup_app.command("off")
def autotopup_off(account_id: str) -> None:
    """Remove the auto top-up config."""

    async def work(ctx: Context) -> Any:
        return {"removed": await auto_topup.delete_config(ctx, account_id)}

    emit(run(work))
