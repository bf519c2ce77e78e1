"""The values enforcement passes around: a hold, a decision, a priced request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import Row

# A database row of any shape (what limits' repository returns; attribute access per column).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


@dataclass(frozen=True)
class Hold:
    id: str
    account_id: str
    request_id: str
    amount: int
    status: str
    created_at: datetime
    expires_at: datetime
    remaining_credit: int
    remaining_limit: int | None
    closed_at: datetime | None = None
    captured: int | None = None
    overrun: int = 0
    late: bool = False
    event_id: str | None = None
    model: str | None = None
    provider: str | None = None

    @classmethod
    def from_row(cls, row: AnyRow) -> Hold:
        """From a `holds` row (its `metadata` column is not part of a Hold)."""
        values = row._mapping
        return cls(**{name: values[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    hold: Hold | None = None
    reason: str | None = None  # insufficient_credit | spending_limit
    retry_after_ms: int | None = None
    replayed: bool = False


@dataclass(frozen=True)
class HoldRequest:
    """One authorize, priced: what limits needs to decide it."""

    account_id: str
    request_id: str
    amount: int
    now: datetime
    ttl_seconds: int
    model: str | None = None
    provider: str | None = None
    metadata: dict[str, Any] | None = None
