"""Raw usage events over time (docs/scaling.md, "Partitions and retention").

On PostgreSQL `usage_events` is partitioned by month of `occurred_at`: one partition per UTC
month named `usage_events_pYYYYMM`, and `usage_events_default` for any event no monthly
partition holds (so a late or far-future event never fails an insert). `ensure_partitions`
creates the current month's and the next `AHEAD` months' partitions (moving any rows the
DEFAULT partition holds for them). `drop_raw_events` drops whole months of raw events older
than a cutoff (DETACH and DROP on PostgreSQL, a DELETE on SQLite); the rollups, the ledger and
the balances are kept. `prune_event_ids` forgets event ids received before the deduplication
horizon. `usage_cost_check` gives reconcile the sums it compares when old raw events are gone.

Every function is idempotent; on PostgreSQL the partition changes take an advisory lock, so
two job runners never race.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.ledger.models import usage_pending
from creditgate.metering.models import usage_event_ids, usage_events, usage_rollups

AHEAD = 2  # monthly partitions created ahead of the current month
PRUNE_BATCH = 10_000  # event ids deleted per statement
_LOCK = 0x63677576  # "cguv": serializes partition changes on PostgreSQL
DEFAULT_PARTITION = "usage_events_default"
_PARTITION = re.compile(r"^usage_events_p(\d{4})(\d{2})$")
_PARTITIONS = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'usage_events'::regclass"
)


def month_start(moment: datetime, add: int = 0) -> datetime:
    """The first instant of `moment`'s UTC month, `add` months later (or earlier)."""
    moment = moment.astimezone(UTC)
    index = moment.year * 12 + moment.month - 1 + add
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def retention_cutoff(now: datetime, months: int | None) -> datetime | None:
    """Raw events before this are dropped: the current month and the `months` before it are
    kept (None: keep forever)."""
    return None if months is None else month_start(now, -months)


def is_partition(table_name: str) -> bool:
    """A partition of usage_events (PostgreSQL), not a table of the schema's own."""
    return table_name == DEFAULT_PARTITION or _PARTITION.match(table_name) is not None


def partition_name(start: datetime) -> str:
    return f"usage_events_p{start:%Y%m}"


async def _lock(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})


async def monthly_partitions(conn: AsyncConnection) -> dict[datetime, str]:
    """PostgreSQL: the monthly partitions of usage_events by their first instant."""
    found: dict[datetime, str] = {}
    for (name,) in await conn.execute(text(_PARTITIONS)):
        match = _PARTITION.match(name)
        if match:
            found[datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)] = name
    return found


async def ensure_partitions(conn: AsyncConnection, now: datetime) -> int:
    """Create the missing partitions of the current month and the `AHEAD` next ones; returns
    how many (0 on SQLite, whose table is not partitioned)."""
    if conn.dialect.name != "postgresql":
        return 0
    wanted = [month_start(now, k) for k in range(AHEAD + 1)]
    existing = await monthly_partitions(conn)
    if all(start in existing for start in wanted):
        return 0
    await _lock(conn)
    existing = await monthly_partitions(conn)
    created = 0
    for start in wanted:
        if start not in existing:
            await create_partition(conn, start)
            created += 1
    return created


async def create_partition(conn: AsyncConnection, start: datetime) -> None:
    """Create the month's partition, moving the rows the DEFAULT partition holds for it (a
    partition cannot be created while the DEFAULT one holds rows of its range)."""
    name, bounds = partition_name(start), {"lo": start, "hi": month_start(start, 1)}
    await conn.execute(text("CREATE TEMP TABLE usage_events_moving (LIKE usage_events) ON COMMIT DROP"))
    await conn.execute(
        text(
            "WITH moved AS (DELETE FROM usage_events_default WHERE occurred_at >= :lo AND occurred_at < :hi "
            "RETURNING *) INSERT INTO usage_events_moving SELECT * FROM moved"
        ),
        bounds,
    )
    lo, hi = (bounds[k].isoformat() for k in ("lo", "hi"))
    await conn.execute(
        text(f"CREATE TABLE {name} PARTITION OF usage_events FOR VALUES FROM ('{lo}') TO ('{hi}')")
    )
    await conn.execute(text("INSERT INTO usage_events SELECT * FROM usage_events_moving"))
    await conn.execute(text("DROP TABLE usage_events_moving"))


async def drop_raw_events(conn: AsyncConnection, before: datetime) -> int:
    """Drop the raw events that occurred before `before` (the first instant of a month): whole
    monthly partitions (DETACH, DROP) and the DEFAULT partition's old rows on PostgreSQL, a
    DELETE on SQLite. Returns the partitions dropped plus the rows deleted."""
    if conn.dialect.name != "postgresql":
        deleted = await conn.execute(usage_events.delete().where(usage_events.c.occurred_at < before))
        return int(deleted.rowcount or 0)
    await _lock(conn)
    dropped = 0
    for start, name in sorted((await monthly_partitions(conn)).items()):
        if month_start(start, 1) <= before:
            await conn.execute(text(f"ALTER TABLE usage_events DETACH PARTITION {name}"))
            await conn.execute(text(f"DROP TABLE {name}"))
            dropped += 1
    deleted = await conn.execute(
        text("DELETE FROM usage_events_default WHERE occurred_at < :b"), {"b": before}
    )
    return dropped + int(deleted.rowcount or 0)


async def prune_event_ids(conn: AsyncConnection, before: datetime, *, limit: int = PRUNE_BATCH) -> int:
    """Forget at most `limit` event ids received before `before`; returns how many."""
    row: ColumnElement[Any] = literal_column("ctid" if conn.dialect.name == "postgresql" else "rowid")
    old = select(row).select_from(usage_event_ids).where(usage_event_ids.c.received_at < before).limit(limit)
    deleted = await conn.execute(delete(usage_event_ids).where(row.in_(old)))
    return int(deleted.rowcount or 0)


@dataclass(frozen=True)
class UsageCosts:
    """What reconcile compares, per account: the cost of all applied usage (the day rollups,
    posted with the usage debits), and since `since` (from when every raw event is kept; None:
    every event) the cost of the raw events, of the hour rollups and of the usage waiting for
    the applier (usage_pending)."""

    since: datetime | None
    applied: dict[str, int]
    events: dict[str, int]
    hours: dict[str, int]
    pending: dict[str, int]


async def usage_costs(conn: AsyncConnection, cutoff: datetime | None) -> UsageCosts:
    """The sums of `UsageCosts`; `cutoff` is the retention cutoff (None: no retention, every
    event is compared). With a cutoff, raw events are complete from the later of the cutoff
    and the month of the oldest kept event (whole months are dropped, only before a cutoff)."""
    e, r, p = usage_events.c, usage_rollups.c, usage_pending.c
    since = cutoff
    if cutoff is not None:
        oldest = (await conn.execute(select(func.min(e.occurred_at)))).scalar()
        if oldest is not None and month_start(oldest) > cutoff:
            since = month_start(oldest)

    def after(column: ColumnElement[datetime]) -> list[ColumnElement[bool]]:
        return [] if since is None else [column >= since]

    return UsageCosts(
        since,
        applied=await _sums(conn, r.account_id, r.cost, r.granularity == "day"),
        events=await _sums(conn, e.account_id, e.cost, *after(e.occurred_at)),
        hours=await _sums(conn, r.account_id, r.cost, r.granularity == "hour", *after(r.bucket_start)),
        pending=await _sums(conn, p.account_id, p.cost, *after(p.bucket_start)),
    )


async def _sums(
    conn: AsyncConnection, account: ColumnElement[str], cost: ColumnElement[int], *where: ColumnElement[bool]
) -> dict[str, int]:
    stmt = select(account, func.sum(cost)).where(*where).group_by(account)
    return {row[0]: int(row[1]) for row in await conn.execute(stmt)}
