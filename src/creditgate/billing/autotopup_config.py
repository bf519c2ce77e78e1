"""Auto top-up settings: the amount and threshold, the monthly cap, and the admin view of an
account's auto top-up state. Amounts are whole cents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup_repo as repo
from creditgate.billing import autotopup_state, topups
from creditgate.billing.invoices import month_bounds
from creditgate.billing.rows import Topup, TopupConfig
from creditgate.billing.topups import MIN_TOPUP_CENTS, check_cents
from creditgate.errors import NotFound, ValidationError
from creditgate.ledger import service as ledger

MIN_THRESHOLD_CENTS = 500


@dataclass(frozen=True)
class AutoTopupState:
    """The admin view of an account's auto top-up."""

    config: TopupConfig
    failures: int
    next_attempt_at: datetime | None
    disabled_code: str | None
    pending: Topup | None
    spent_this_month: int  # cents
    state: str  # off | idle | in_flight | backoff | capped | paused | disabled


async def get_topup_config(conn: AsyncConnection, account_id: str) -> TopupConfig:
    row = await repo.get_config(conn, account_id)
    return TopupConfig() if row is None else row.config


async def set_topup_config(
    conn: AsyncConnection, account_id: str, *, amount: Any, threshold: Any, now: datetime
) -> TopupConfig:
    """Create or replace the auto top-up config. A new config clears the previous error state."""
    amount = check_cents(amount, "amount", minimum=MIN_TOPUP_CENTS)
    threshold = check_cents(threshold, "threshold", minimum=MIN_THRESHOLD_CENTS)
    await ledger.lock(conn, [account_id])
    await ledger.get_account(conn, account_id)
    values = {
        "amount": amount,
        "threshold": threshold,
        "error": None,
        "disabled_reason": None,
        "last_failed_at": None,
        "updated_at": now,
    }
    await repo.upsert_config(conn, account_id, values)
    await autotopup_state.reenable(conn, account_id, now)  # also ends a backoff or a pause
    return TopupConfig(amount=amount, threshold=threshold)


async def delete_topup_config(conn: AsyncConnection, account_id: str) -> bool:
    """Remove the config; False when there was none (still a success for callers)."""
    await ledger.get_account(conn, account_id)
    return await repo.delete_config(conn, account_id)


async def set_monthly_cap(conn: AsyncConnection, account_id: str, cap: Any, now: datetime) -> None:
    """Set (cents) or clear (None) the cap; needs a config. Changing it ends a cap wait."""
    if cap is not None:
        cap = check_cents(cap, "monthly_cap", minimum=MIN_TOPUP_CENTS)
    await ledger.lock(conn, [account_id])
    config = await repo.get_config(conn, account_id)
    if config is None:
        raise NotFound("auto top-up is not configured on this account", field="monthly_cap")
    if cap is not None and cap < config.amount:
        raise ValidationError("monthly_cap must be at least the auto top-up amount", field="monthly_cap")
    await repo.update_config(conn, account_id, {"monthly_cap": cap, "updated_at": now})


async def get_state(conn: AsyncConnection, account_id: str, now: datetime) -> AutoTopupState:
    await ledger.get_account(conn, account_id)
    row = await repo.get_config(conn, account_id)
    start, end = month_bounds(now)
    spent = await repo.auto_spent(conn, account_id, start, end)
    if row is None:
        return AutoTopupState(TopupConfig(), 0, None, None, None, spent, "off")
    pending = await topups.get_topup(conn, row.pending_topup_id) if row.pending_topup_id else None
    if row.disabled_code == autotopup_state.AUTH_REQUIRED:
        state = "paused"
    elif row.disabled_reason is not None:
        state = "disabled"
    elif pending is not None:
        state = "in_flight"
    elif row.next_attempt_at is not None and row.next_attempt_at > now:
        state = "backoff" if row.failures else "capped"
    else:
        state = "idle"
    return AutoTopupState(
        row.config, row.failures, row.next_attempt_at, row.disabled_code, pending, spent, state
    )
