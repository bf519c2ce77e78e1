"""`creditgate topups ...` (list, refund) and `creditgate autotopup ...` (show, set, off)."""

from __future__ import annotations

from typing import Any

import typer

from creditgate.api.admin_autotopup import refund_topup, refund_view, topup_view
from creditgate.billing import autotopup, refunds, topups
from creditgate.billing import service as billing
from creditgate.cli.runtime import emit, run
from creditgate.clock import system_clock
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.payments.factory import make_processor

topups_app = typer.Typer(help="Top-ups and their refunds.", no_args_is_help=True)
autotopup_app = typer.Typer(help="Auto top-up: state, config, monthly cap.", no_args_is_help=True)


@topups_app.command("list")
def topups_list(account_id: str, limit: int = typer.Option(20, help="How many, newest first.")) -> None:
    """List an account's top-ups with what was refunded."""

    async def work(db: Database) -> Any:
        async with db.read() as conn:
            await ledger.get_account(conn, account_id)
            found = await topups.list_topups(conn, account_id, limit=limit)
            return [topup_view(t, await refunds.list_refunds(conn, t.id)) for t in found]

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

    async def work(db: Database) -> Any:
        proc = make_processor(Settings.from_env(), db)
        view, made = await refund_topup(
            db,
            proc,
            account_id,
            topup_id,
            amount=amount_cents,
            reason=reason,
            request_key=None,
            now=system_clock(),
        )
        return {"topup": view, "refund": refund_view(made) if made else None}

    emit(run(work))


@autotopup_app.command("show")
def autotopup_show(account_id: str) -> None:
    """The account's auto top-up state (idle, in_flight, backoff, capped, paused, disabled)."""

    async def work(db: Database) -> Any:
        async with db.read() as conn:
            state = await autotopup.get_state(conn, account_id, system_clock())
        return {
            "state": state.state,
            "amount": state.config.amount,
            "threshold": state.config.threshold,
            "monthly_cap": state.config.monthly_cap,
            "spent_this_month": state.spent_this_month,
            "error": state.config.error,
            "disabled_reason": state.config.disabled_reason,
            "consecutive_failures": state.failures,
            "next_attempt_at": state.next_attempt_at.isoformat() if state.next_attempt_at else None,
            "pending_topup_id": state.pending.id if state.pending else None,
        }

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

    async def work(db: Database) -> Any:
        now = system_clock()
        async with db.write() as conn:
            config = await billing.set_topup_config(
                conn, account_id, amount=amount_cents, threshold=threshold_cents, now=now
            )
            if no_cap or monthly_cap_cents is not None:
                await autotopup.set_monthly_cap(conn, account_id, None if no_cap else monthly_cap_cents, now)
        return {"amount": config.amount, "threshold": config.threshold, "monthly_cap": monthly_cap_cents}

    emit(run(work))


@autotopup_app.command("off")
def autotopup_off(account_id: str) -> None:
    """Remove the auto top-up config."""

    async def work(db: Database) -> Any:
        async with db.write() as conn:
            await ledger.lock(conn, [account_id])
            removed = await billing.delete_topup_config(conn, account_id)
        return {"removed": removed}

    emit(run(work))
