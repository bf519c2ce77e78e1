"""Credit grants (promotional, optionally expiring) and signed adjustments: the one place that
checks and posts them, for the admin API (under its Idempotency-Key) and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.clock import parse_iso
from creditgate.errors import ValidationError
from creditgate.ledger import service as ledger
from creditgate.money import MAX_AMOUNT, UNITS_PER_CENT, cents
from creditgate.workflows.context import Context

MAX_CENTS = MAX_AMOUNT // UNITS_PER_CENT  # $1,000,000,000


@dataclass(frozen=True)
class Grant:
    """Credit given away, in cents (>= 1), optionally expiring."""

    account_id: str
    amount_cents: int
    reason: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Adjustment:
    """A signed correction in cents (not 0), with the reason it was made."""

    account_id: str
    amount_cents: int
    reason: str


def parse_expiry(value: str | None, now: datetime) -> datetime | None:
    """An optional future ISO 8601 expiry."""
    if value is None:
        return None
    try:
        moment = parse_iso(value)
    except ValueError as exc:
        raise ValidationError(f"expires_at must be an ISO 8601 timestamp: {exc}", field="expires_at") from exc
    if moment <= now:
        raise ValidationError("expires_at must be in the future", field="expires_at")
    return moment


def _check(change: Grant | Adjustment) -> None:
    amount = change.amount_cents
    if isinstance(change, Grant) and amount < 1:
        raise ValidationError("amount_cents must be >= 1", field="amount_cents")
    if amount == 0:
        raise ValidationError("amount_cents must not be 0", field="amount_cents")
    if abs(amount) > MAX_CENTS:
        raise ValidationError(f"amount_cents must be at most {MAX_CENTS} in size", field="amount_cents")


async def post(conn: AsyncConnection, change: Grant | Adjustment, now: datetime) -> Any:
    """Post a grant or an adjustment inside the caller's transaction (the admin API's
    Idempotency-Key claim shares it); returns the new ledger entry."""
    _check(change)
    if isinstance(change, Grant):
        posting = ledger.Posting(
            change.account_id,
            "grant",
            cents(change.amount_cents),
            reason=change.reason,
            expires_at=change.expires_at,
        )
    else:
        posting = ledger.Posting(
            change.account_id, "adjustment", cents(change.amount_cents), reason=change.reason
        )
    await ledger.post(conn, [posting], now)
    return (await ledger.list_entries(conn, change.account_id, limit=1))[0]


async def apply(ctx: Context, change: Grant | Adjustment) -> Any:
    """Post a grant or an adjustment in its own transaction; returns the new ledger entry."""
    async with ctx.db.write() as conn:
        return await post(conn, change, ctx.clock())
