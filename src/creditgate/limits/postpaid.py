"""Postpaid spending limits (the xAI model): how far past its prepaid credit an account may run
on account, before authorize refuses.

- The hard limit (xAI `hardSlAuto`) is the operator's ceiling per account, set through the admin
  API and the CLI. 0, the default, means prepaid only; a prepaid account's is always 0.
- The soft limit (`softSl`) is the customer's own, set through the xAI API, at most the hard
  limit. None means never set: the customer has not limited itself, so the hard limit applies.
- The effective limit (`effectiveSl`) is min(soft, hard). Lowering the hard limit below the
  soft one lowers the effective limit; the soft limit is kept as the customer set it.

Enforcement is authorize's (limits.decision and its twin authorize_many.sql): available credit
= balance - held + effective limit. Prepaid credit (a positive balance) is used first; then the
balance runs negative, at most down to minus the effective limit, with the zero-overspend
guarantee that prepaid credit has (only a settle's overrun goes past it). The limit bounds what
is owed on account at any moment (a paid postpaid invoice credits the balance back).

Amounts are ledger units. Every write locks the account row first, as authorize does, so a limit
changes between two decisions, never during one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.errors import NotFound, ValidationError
from creditgate.ledger.service import check_postpaid_hard_limit
from creditgate.limits import repository as repo
from creditgate.limits.holds import AnyRow
from creditgate.money import to_usd_string


def effective_limit(hard: int, soft: int | None) -> int:
    """The limit authorize enforces: the soft limit capped by the hard one (the hard one when
    no soft limit was set)."""
    return hard if soft is None else min(soft, hard)


@dataclass(frozen=True)
class PostpaidLimits:
    """An account's postpaid limits, ledger units."""

    account_id: str
    hard: int
    soft: int | None

    @property
    def effective(self) -> int:
        return effective_limit(self.hard, self.soft)


def _limits(account_id: str, row: AnyRow | None) -> PostpaidLimits:
    if row is None:
        raise NotFound(f"no account {account_id!r}")
    soft = None if row.postpaid_soft_limit is None else int(row.postpaid_soft_limit)
    return PostpaidLimits(account_id, int(row.postpaid_hard_limit), soft)


async def _locked(conn: AsyncConnection, account_id: str) -> tuple[str, PostpaidLimits]:
    row = await repo.lock_postpaid_limits(conn, account_id)
    return ("" if row is None else row.mode), _limits(account_id, row)


async def get_limits(conn: AsyncConnection, account_id: str) -> PostpaidLimits:
    """The account's limits (NotFound for an unknown account)."""
    return _limits(account_id, await repo.postpaid_limits(conn, account_id))


async def effective_spending_limit(conn: AsyncConnection, account_id: str) -> int:
    """The effective postpaid limit in force (xAI `effectiveSl`, the preview's
    `effectiveSpendingLimit`), ledger units; NotFound for an unknown account."""
    return (await get_limits(conn, account_id)).effective


async def set_hard_limit(conn: AsyncConnection, account_id: str, amount: int) -> PostpaidLimits:
    """Set the operator's ceiling (0 to the largest amount; only a postpaid account above 0)."""
    mode, limits = await _locked(conn, account_id)
    check_postpaid_hard_limit(mode, amount)
    await repo.put_postpaid_limits(conn, account_id, hard=amount, soft=limits.soft)
    return PostpaidLimits(account_id, amount, limits.soft)


async def set_soft_limit(conn: AsyncConnection, account_id: str, amount: int) -> PostpaidLimits:
    """Set the customer's own limit: 0 (prepaid only) up to the hard limit."""
    _, limits = await _locked(conn, account_id)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValidationError("the soft limit must not be negative", field="soft_limit")
    if amount > limits.hard:
        raise ValidationError(
            f"the soft limit must be at most the hard limit (USD {to_usd_string(limits.hard)})",
            field="soft_limit",
        )
    await repo.put_postpaid_limits(conn, account_id, hard=limits.hard, soft=amount)
    return PostpaidLimits(account_id, limits.hard, amount)
