"""Time, in one place, so tests can inject a clock. Everything is UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def system_clock() -> datetime:
    """The real time, timezone-aware UTC."""
    return datetime.now(UTC)


def from_ms(ms: int) -> datetime:
    """Unix milliseconds to an aware UTC datetime, exactly."""
    return EPOCH + ms * _MS


def to_ms(moment: datetime) -> int:
    """An aware datetime to Unix milliseconds (truncating sub-millisecond parts)."""
    return (moment - EPOCH) // _MS


class ManualClock:
    """A clock that only moves when told to: for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now = self.now + timedelta(**delta)


def parse_iso(value: str) -> datetime:
    """An ISO 8601 timestamp with a timezone ("Z" allowed) to aware UTC. Raises ValueError."""
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp needs a timezone, e.g. 2027-01-01T00:00:00Z")
    return moment.astimezone(UTC)
