"""The ledger's typed rows (frozen dataclasses): what every other module reads of an account
and of an entry. Amounts are ledger units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    currency: str
    mode: str  # prepaid | postpaid
    postpaid_hard_limit: int  # the operator's ceiling on postpaid use (0: prepaid only)
    postpaid_soft_limit: int | None  # the customer's own limit; None when never set
    balance: int
    held: int
    created_at: datetime


@dataclass(frozen=True)
class Entry:
    id: int
    account_id: str
    kind: str
    amount: int
    balance_after: int
    ref: str | None
    reason: str | None
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Posted:
    """What `ledger.post` did: per posting whether it was new (False: its ref was already
    posted), and every touched account's balance afterwards."""

    applied: list[bool]
    balances: dict[str, int]

    @property
    def new_count(self) -> int:
        return sum(self.applied)
