"""The auto top-up state machine's transitions, and the events every top-up emits.

States of an account's auto top-up (columns of `auto_topup_configs`):

    idle        balance >= threshold, or waiting for the next debit / job pass
    in flight   pending_topup_id set: one auto top-up queued or being charged (at most one)
    backoff     next_attempt_at in the future after 1 or 2 consecutive declines (1 h, 6 h)
    disabled    disabled_reason set: 3 consecutive declines (code `failures`), the card needs
                the customer to authenticate (`authentication_required`: paused), or there is
                no card (`no_card`). Saving a card or changing the config re-enables it.
    capped      next_attempt_at = start of next month: the monthly cap is reached

Every function here runs inside the caller's transaction with the account row locked
(`ledger.lock`), so the read-modify-writes below cannot interleave with a debit or another
settlement of the same account.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup_repo as arepo
from creditgate.billing import repository as repo
from creditgate.billing.models import auto_topup_configs
from creditgate.money import UNITS_PER_CENT
from creditgate.notify import service as notify

if TYPE_CHECKING:
    from creditgate.billing.topups import Topup

# Wait after consecutive decline 1, 2, 3...; the MAX_FAILURES-th decline disables instead.
BACKOFF = (timedelta(hours=1), timedelta(hours=6), timedelta(hours=24))
MAX_FAILURES = 3
AUTH_REQUIRED = "authentication_required"


def _topup_payload(topup: Topup) -> dict[str, Any]:
    return {
        "topup_id": topup.id,
        "invoice_id": topup.invoice_id,
        "amount": topup.amount,
        "currency": topup.currency,
        "origin": topup.origin,
        "status": topup.status,
        "payment_id": topup.payment_id,
        "failure_code": topup.failure_code,
        "failure_message": topup.failure_message,
    }


async def topup_settled(
    conn: AsyncConnection, topup: Topup, previous_status: str, balance: int, now: datetime
) -> None:
    """A top-up changed status (`topup` is the new state): emit topup.succeeded/failed and
    move its account's auto top-up state. `balance` is the account's balance after it."""
    if topup.status == "completed":
        await notify.emit(conn, topup.account_id, "topup.succeeded", _topup_payload(topup), now)
    elif topup.status == "failed":
        await notify.emit(conn, topup.account_id, "topup.failed", _topup_payload(topup), now)
    if topup.origin != "auto":
        return
    config = await arepo.get_config(conn, topup.account_id)
    if config is None:  # auto top-up was turned off while this one was in flight
        return
    mine = config.pending_topup_id == topup.id
    if topup.status == "completed":
        values: dict[str, Any] = {
            "failures": 0,
            "error": None,
            "disabled_reason": None,
            "disabled_code": None,
            "next_attempt_at": None,
            "updated_at": now,
        }
        if mine:
            values["pending_topup_id"] = None
        if balance >= int(config.threshold) * UNITS_PER_CENT:
            values["low_since"] = None
        await arepo.update_config(conn, topup.account_id, values)
        return
    if not mine:  # a top-up released by a re-enable: its outcome is not this card's
        return
    if topup.failure_code == AUTH_REQUIRED or topup.status == "pending":
        await _pause(conn, topup, now, release=topup.status != "pending")
        return
    if topup.status != "failed" or previous_status == "failed":
        return
    failures = int(config.failures) + 1
    message = f"{topup.failure_message or 'The payment failed.'} ({topup.failure_code or 'payment_failed'})"
    values = {
        "pending_topup_id": None,
        "failures": failures,
        "error": message[:500],
        "last_failed_at": now,
        "updated_at": now,
    }
    if failures >= MAX_FAILURES:
        reason = (
            f"auto top-up turned off after {failures} consecutive failed charges (last: {message}); "
            "save a new card or change the auto top-up config to turn it back on"
        )
        values.update(disabled_reason=reason[:500], disabled_code="failures", next_attempt_at=None)
        await arepo.update_config(conn, topup.account_id, values)
        await _disabled_event(conn, topup.account_id, "failures", reason, topup, now)
        return
    values["next_attempt_at"] = now + BACKOFF[failures - 1]
    await arepo.update_config(conn, topup.account_id, values)


async def _pause(conn: AsyncConnection, topup: Topup, now: datetime, *, release: bool) -> None:
    """Off-session 3-D Secure: no retry until the customer authenticates (a pending top-up that
    completes re-enables it) or saves another card."""
    reason = (
        "paused: the card needs the customer to authenticate (3-D Secure) and cannot be charged "
        f"off session; complete invoice {topup.invoice_id} or save another card"
    )
    values: dict[str, Any] = {
        "disabled_reason": reason,
        "disabled_code": AUTH_REQUIRED,
        "error": (topup.failure_message or "authentication required")[:500],
        "last_failed_at": now,
        "updated_at": now,
    }
    if release:
        values["pending_topup_id"] = None
    await arepo.update_config(conn, topup.account_id, values)
    await _disabled_event(conn, topup.account_id, AUTH_REQUIRED, reason, topup, now)


async def _disabled_event(
    conn: AsyncConnection, account_id: str, code: str, reason: str, topup: Topup | None, now: datetime
) -> None:
    payload: dict[str, Any] = {"code": code, "reason": reason, "paused": code == AUTH_REQUIRED}
    if topup is not None:
        payload.update(topup_id=topup.id, invoice_id=topup.invoice_id, topup_status=topup.status)
    await notify.emit(conn, account_id, "auto_topup.disabled", payload, now)


async def disable(conn: AsyncConnection, account_id: str, code: str, reason: str, now: datetime) -> None:
    """Turn auto top-up off for a reason that is not a charge (e.g. no card), once."""
    changed = await arepo.update_config(
        conn,
        account_id,
        {"disabled_reason": reason[:500], "disabled_code": code, "error": reason[:500], "updated_at": now},
        auto_topup_configs.c.disabled_reason.is_(None),
    )
    if changed:
        await _disabled_event(conn, account_id, code, reason, None, now)


async def reenable(conn: AsyncConnection, account_id: str, now: datetime) -> None:
    """A new card or a new config: clear the error state and the backoff. A top-up paused for
    3-D Secure is released (it still credits if the customer completes it); one whose charge
    may be under way is kept, so there is never a second charge in flight."""
    config = await arepo.get_config(conn, account_id)
    if config is None:
        return
    values: dict[str, Any] = {
        "failures": 0,
        "error": None,
        "disabled_reason": None,
        "disabled_code": None,
        "next_attempt_at": None,
        "last_failed_at": None,
        "updated_at": now,
    }
    if config.pending_topup_id is not None:
        pending = await repo.get_topup(conn, config.pending_topup_id)
        if pending is None or pending.status != "created":
            values["pending_topup_id"] = None
    await arepo.update_config(conn, account_id, values)
