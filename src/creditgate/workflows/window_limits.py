"""An account's spending limit per day, week or month (fixed or sliding window): read it with
the current window's use, set it, remove it. The Cloudflare `spending-limit` routes and the
billing portal both call these. (The postpaid limits are workflows.spending_limits.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from creditgate.billing.topups import check_cents
from creditgate.errors import ValidationError
from creditgate.ledger import service as ledger
from creditgate.limits import config as limits
from creditgate.limits import service as enforcement
from creditgate.limits import windows
from creditgate.limits.config import SpendingLimit
from creditgate.money import cents
from creditgate.workflows.context import Context

MIN_LIMIT_CENTS = 100


@dataclass(frozen=True)
class LimitStatus:
    """The limit (None: no limit), what the window in force has used (ledger units), when that
    window began and, for a fixed window, when it resets."""

    limit: SpendingLimit | None
    used: int = 0
    window_start: datetime | None = None
    resets_at: datetime | None = None

    @property
    def remaining(self) -> int:
        return 0 if self.limit is None else max(0, self.limit.amount - self.used)


async def get_limit(ctx: Context, account_id: str) -> SpendingLimit | None:
    async with ctx.db.read() as conn:
        await ledger.get_account(conn, account_id)
        return await limits.get_limit(conn, account_id)


async def limit_status(ctx: Context, account_id: str) -> LimitStatus:
    """The limit and its current window (reading the window brings its running sum up to date,
    as enforcement does, hence a write transaction)."""
    now = ctx.clock()
    async with ctx.db.write() as conn:
        await ledger.get_account(conn, account_id)
        limit = await limits.get_limit(conn, account_id)
        if limit is None:
            return LimitStatus(None)
        used = await enforcement.window_spend(conn, account_id, now) or 0
    start = windows.window_start(limit.duration, limit.strategy, now)
    resets = windows.fixed_window_end(limit.duration, now) if limit.strategy == "fixed" else None
    return LimitStatus(limit, used, start, resets)


async def set_limit(
    ctx: Context, account_id: str, *, amount: Any, duration: Any, strategy: Any
) -> SpendingLimit:
    """Create or replace the limit: `amount` in whole cents (at least $1), `duration` daily,
    weekly or monthly, `strategy` fixed (calendar window) or sliding."""
    amount = check_cents(amount, "amount", minimum=MIN_LIMIT_CENTS)
    if duration not in limits.DURATIONS:
        raise ValidationError("duration must be one of daily, weekly, monthly", field="duration")
    if strategy not in limits.STRATEGIES:
        raise ValidationError("strategy must be one of fixed, sliding", field="strategy")
    async with ctx.db.write() as conn:
        await ledger.lock(conn, [account_id])
        await ledger.get_account(conn, account_id)
        return await limits.set_limit(
            conn, account_id, amount=cents(amount), duration=duration, strategy=strategy, now=ctx.clock()
        )


async def delete_limit(ctx: Context, account_id: str) -> None:
    async with ctx.db.write() as conn:
        await ledger.lock(conn, [account_id])
        await ledger.get_account(conn, account_id)
        await limits.delete_limit(conn, account_id)
