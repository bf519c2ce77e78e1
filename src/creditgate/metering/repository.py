"""SQL for metering. Only metering's own modules import this."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.db.driver import pg_driver
from creditgate.ledger.models import usage_pending
from creditgate.metering.models import prices, usage_event_ids, usage_events, usage_rollups


def _insert(conn: AsyncConnection, table: Any) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


async def catalog_version(conn: AsyncConnection) -> int:
    if conn.dialect.name == "postgresql":  # once per ingest transaction: skip SQLAlchemy
        return int(await (await pg_driver(conn)).fetchval("SELECT coalesce(max(id), 0) FROM prices"))
    return int((await conn.execute(select(func.coalesce(func.max(prices.c.id), 0)))).scalar_one())


_CATALOG_LOCK = 0x63677072  # "cgpr": serializes price imports on PostgreSQL


async def lock_catalog(conn: AsyncConnection) -> None:
    """Serialize writers of the prices table (SQLite writers are serialized already)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(_CATALOG_LOCK)))


async def all_prices(conn: AsyncConnection) -> list[Any]:
    stmt = select(prices).order_by(prices.c.provider, prices.c.model, prices.c.effective_from)
    return list(await conn.execute(stmt))


async def insert_prices(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(prices.insert(), rows)


_EVENT_ARRAYS = (
    ("a", "account_id", "varchar"), ("e", "event_id", "varchar"), ("o", "occurred_at", "timestamptz"),
    ("p", "provider", "varchar"), ("m", "model", "varchar"), ("it", "input_tokens", "bigint"),
    ("ot", "output_tokens", "bigint"), ("ct", "cached_tokens", "bigint"), ("c", "cost", "bigint"),
    ("pid", "price_id", "bigint"), ("k", "api_key_id", "varchar"), ("md", "metadata", "text"),
)  # fmt: skip


def _unnest(arrays: tuple[tuple[str, str, str], ...], first: int = 1) -> str:
    """`unnest($1::varchar[], ...) AS t(a, ...)` over constant column lists."""
    casts = ", ".join(f"${first + i}::{sql_type}[]" for i, (_, _, sql_type) in enumerate(arrays))
    return f"unnest({casts}) AS t({', '.join(key for key, _, _ in arrays)})"


_PENDING_SUMS = "count(*), sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(cost)"
# One statement: claim the new event ids (the deduplication key, usage_event_ids), store the
# events of the ids claimed (raw events are partitioned by occurred_at on PostgreSQL, so their
# key holds it; an event already there with the same timestamp is skipped too) and queue what
# they owe for the applier, summed per account, hour, provider, model and api key. Answers the
# stored (account, event) pairs and the ids of the pending rows (rows of the second kind have
# NULL keys). Every insert runs in key order, so concurrent batches never deadlock.
_PG_INSERT_EVENTS = (
    f"WITH t AS (SELECT * FROM {_unnest(_EVENT_ARRAYS)}), "
    "ids AS (INSERT INTO usage_event_ids (account_id, event_id, received_at) "
    "SELECT a, e, $14::timestamptz FROM t ORDER BY a, e "
    "ON CONFLICT (account_id, event_id) DO NOTHING RETURNING account_id, event_id), "
    "ins AS (INSERT INTO usage_events (account_id, event_id, occurred_at, provider, model, "
    "input_tokens, output_tokens, cached_tokens, cost, price_id, api_key_id, metadata, hold_id, "
    "received_at) SELECT a, e, o, p, m, it, ot, ct, c, pid, k, md::jsonb, $13::varchar, $14::timestamptz "
    "FROM t JOIN ids ON ids.account_id = t.a AND ids.event_id = t.e ORDER BY a, e "
    "ON CONFLICT (account_id, event_id, occurred_at) DO NOTHING RETURNING account_id, event_id, "
    "occurred_at, provider, model, api_key_id, input_tokens, output_tokens, cached_tokens, cost), "
    "pend AS (INSERT INTO usage_pending (account_id, received_at, bucket_start, provider, model, "
    "api_key_id, events, input_tokens, output_tokens, cached_tokens, cost) "
    "SELECT account_id, $14::timestamptz, date_trunc('hour', occurred_at, 'UTC'), provider, model, "
    f"coalesce(api_key_id, ''), {_PENDING_SUMS} FROM ins GROUP BY 1, 3, 4, 5, 6 RETURNING id) "
    "SELECT account_id, event_id, NULL::bigint FROM ins UNION ALL SELECT NULL, NULL, id FROM pend"
)
_PENDING_COLUMNS = (
    "account_id, received_at, bucket_start, provider, model, api_key_id, events, input_tokens, "
    "output_tokens, cached_tokens, cost"
)
_PG_CLAIM_NEXT = (
    "DELETE FROM usage_pending WHERE id IN (SELECT id FROM usage_pending ORDER BY id LIMIT $1 "
    f"FOR UPDATE SKIP LOCKED) RETURNING {_PENDING_COLUMNS}"
)
_PG_CLAIM_IDS = (
    "DELETE FROM usage_pending WHERE account_id = ANY($2::varchar[]) AND id = ANY($1::bigint[]) "
    f"RETURNING {_PENDING_COLUMNS}"
)
_HOUR_ARRAYS = (
    ("a", "account_id", "varchar"), ("b", "bucket_start", "timestamptz"), ("p", "provider", "varchar"),
    ("m", "model", "varchar"), ("k", "api_key_id", "varchar"), ("n", "events", "bigint"),
    ("it", "input_tokens", "bigint"), ("ot", "output_tokens", "bigint"), ("ct", "cached_tokens", "bigint"),
    ("c", "cost", "bigint"),
)  # fmt: skip
_SUMS = ("events", "input_tokens", "output_tokens", "cached_tokens", "cost")
# Hour rows come in as arrays; the day rows are summed from them by PostgreSQL (UTC days).
_PG_ADD_TO_ROLLUPS = (
    f"WITH h AS (SELECT * FROM {_unnest(_HOUR_ARRAYS)}) "
    "INSERT INTO usage_rollups (account_id, granularity, bucket_start, provider, model, api_key_id, "
    f"{', '.join(_SUMS)}) "
    "SELECT a, 'hour', b, p, m, k, n, it, ot, ct, c FROM h "
    "UNION ALL SELECT a, 'day', date_trunc('day', b, 'UTC'), p, m, k, sum(n), sum(it), sum(ot), sum(ct), "
    "sum(c) FROM h GROUP BY a, date_trunc('day', b, 'UTC'), p, m, k "
    "ORDER BY 1, 2, 3, 4, 5, 6 "
    "ON CONFLICT (account_id, granularity, bucket_start, provider, model, api_key_id) "
    "DO UPDATE SET " + ", ".join(f"{col} = usage_rollups.{col} + excluded.{col}" for col in _SUMS)
)

Columns = dict[str, list[Any]]


def _rows(columns: Columns, **constants: Any) -> list[dict[str, Any]]:
    names = list(columns)
    return [
        dict(zip(names, values, strict=True), **constants) for values in zip(*columns.values(), strict=True)
    ]


@dataclass
class Stored:
    """What `store_events` wrote: the (account_id, event_id) pairs that were new, and the ids
    of the pending rows queued for them (known on PostgreSQL; SQLite: see `pending_hours`)."""

    inserted: set[tuple[str, str]]
    pending_ids: list[int]


async def store_events(
    conn: AsyncConnection,
    columns: Columns,
    pending_hours: Callable[[set[tuple[str, str]]], Columns],
    *,
    hold_id: str | None,
    received_at: datetime,
) -> Stored:
    """Insert events given column-wise (the columns of _EVENT_ARRAYS, each (account_id,
    event_id) once), skipping ids already seen (usage_event_ids, within the deduplication
    horizon) and events already stored with the same timestamp, and queue their cost in
    usage_pending (per account, hour, provider and model; `pending_hours(inserted)` builds
    those sums where the database does not). PostgreSQL: one statement over arrays, in key
    order (so concurrent batches never deadlock)."""
    if not columns["event_id"]:
        return Stored(set(), [])
    if conn.dialect.name == "postgresql":
        arrays = [columns[col] for _, col, _ in _EVENT_ARRAYS[:-1]]
        arrays.append(columns["metadata_json"])  # encoded once, when validated
        driver = await pg_driver(conn)
        rows = await driver.fetch(_PG_INSERT_EVENTS, *arrays, hold_id, received_at)
        return Stored({(r[0], r[1]) for r in rows if r[2] is None}, [r[2] for r in rows if r[2] is not None])
    inserted = await _store_events_sqlite(conn, columns, hold_id=hold_id, received_at=received_at)
    hours = pending_hours(inserted)
    if not hours["account_id"]:
        return Stored(inserted, [])
    queued = await conn.execute(
        usage_pending.insert().returning(usage_pending.c.id), _rows(hours, received_at=received_at)
    )
    return Stored(inserted, [int(r.id) for r in queued])


async def _store_events_sqlite(
    conn: AsyncConnection, columns: Columns, *, hold_id: str | None, received_at: datetime
) -> set[tuple[str, str]]:
    """The SQLite side of `store_events`: claim the ids, then store the events of those claimed."""
    claim = (
        _insert(conn, usage_event_ids)
        .on_conflict_do_nothing(index_elements=["account_id", "event_id"])
        .returning(usage_event_ids.c.account_id, usage_event_ids.c.event_id)
    )
    keys = [
        {"account_id": a, "event_id": e, "received_at": received_at}
        for a, e in zip(columns["account_id"], columns["event_id"], strict=True)
    ]
    claimed = {(r.account_id, r.event_id) for r in await conn.execute(claim, keys)}
    rows = [
        row
        for row in _rows(
            {k: v for k, v in columns.items() if k != "metadata_json"},
            hold_id=hold_id,
            received_at=received_at,
        )
        if (row["account_id"], row["event_id"]) in claimed
    ]
    if not rows:
        return set()
    stmt = (
        _insert(conn, usage_events)
        .on_conflict_do_nothing(index_elements=["account_id", "event_id", "occurred_at"])
        .returning(usage_events.c.account_id, usage_events.c.event_id)
    )
    return {(r.account_id, r.event_id) for r in await conn.execute(stmt, rows)}


async def claim_pending(
    conn: AsyncConnection, *, limit: int, ids: list[int] | None = None, accounts: list[str] | None = None
) -> list[Any]:
    """Delete and return pending rows (columns of usage_pending but id): the `ids` given (rows
    of `accounts`, so the statement is addressed by account), or the oldest `limit` that no
    other transaction holds (PostgreSQL: SKIP LOCKED, so several appliers share the queue; a
    SQLite writer is alone anyway). The caller applies them in the same transaction, so a crash
    before its commit gives them back."""
    if conn.dialect.name == "postgresql":
        driver = await pg_driver(conn)
        if ids is not None:
            return list(await driver.fetch(_PG_CLAIM_IDS, ids, sorted(accounts or ()))) if ids else []
        return list(await driver.fetch(_PG_CLAIM_NEXT, limit))
    if ids is None:
        oldest = select(usage_pending.c.id).order_by(usage_pending.c.id).limit(limit)
        ids = list((await conn.execute(oldest)).scalars())
    if not ids:
        return []
    columns = [c for c in usage_pending.c if c.name != "id"]
    claim = delete(usage_pending).where(usage_pending.c.id.in_(ids))
    if accounts is not None:
        claim = claim.where(usage_pending.c.account_id.in_(sorted(accounts)))
    return list(await conn.execute(claim.returning(*columns)))


async def oldest_pending(conn: AsyncConnection) -> datetime | None:
    """When the oldest usage still waiting for the applier was stored (None: nothing waits)."""
    oldest: datetime | None = (await conn.execute(select(func.min(usage_pending.c.received_at)))).scalar_one()
    return oldest


async def add_to_hourly_rollups(conn: AsyncConnection, hours: Columns) -> None:
    """Upsert-add hour buckets given column-wise (the columns of _HOUR_ARRAYS, one row per
    key) and the day buckets summed from them; PostgreSQL applies them in key order."""
    if not hours["account_id"]:
        return
    if conn.dialect.name == "postgresql":
        driver = await pg_driver(conn)
        await driver.execute(_PG_ADD_TO_ROLLUPS, *(hours[col] for _, col, _ in _HOUR_ARRAYS))
        return
    rows = _rows(hours, granularity="hour")
    days: dict[tuple[str, datetime, str, str, str], dict[str, Any]] = {}
    for row in rows:
        start = row["bucket_start"].replace(hour=0)
        key = (row["account_id"], start, row["provider"], row["model"], row["api_key_id"])
        day = days.get(key)
        if day is None:
            days[key] = {**row, "granularity": "day", "bucket_start": start}
        else:
            for name in _SUMS:
                day[name] += row[name]
    stmt = _insert(conn, usage_rollups)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id", "granularity", "bucket_start", "provider", "model", "api_key_id"],
        set_={name: usage_rollups.c[name] + excluded[name] for name in _SUMS},
    )
    await conn.execute(stmt, rows + list(days.values()))


@dataclass(frozen=True, slots=True)
class UsageBucket:
    """One hour or day of an account's usage, summed over providers and models."""

    bucket_start: datetime
    events: int
    cost: int


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """An account's usage of one provider/model over a period."""

    provider: str
    model: str
    events: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: int


async def rollups(
    conn: AsyncConnection,
    account_id: str,
    granularity: str,
    start: datetime,
    end: datetime,
) -> list[UsageBucket]:
    """Rollup rows of one account in [start, end), summed over provider/model per bucket."""
    stmt = (
        select(
            usage_rollups.c.bucket_start,
            func.sum(usage_rollups.c.events).label("events"),
            func.sum(usage_rollups.c.cost).label("cost"),
        )
        .where(
            usage_rollups.c.account_id == account_id,
            usage_rollups.c.granularity == granularity,
            usage_rollups.c.bucket_start >= start,
            usage_rollups.c.bucket_start < end,
        )
        .group_by(usage_rollups.c.bucket_start)
        .order_by(usage_rollups.c.bucket_start)
    )
    return [UsageBucket(r.bucket_start, int(r.events), int(r.cost)) for r in await conn.execute(stmt)]


async def rollups_by_model(
    conn: AsyncConnection, account_id: str, granularity: str, start: datetime, end: datetime
) -> list[ModelUsage]:
    """Totals per provider/model for one account over [start, end)."""
    c = usage_rollups.c
    stmt = (
        select(
            c.provider,
            c.model,
            func.sum(c.events).label("events"),
            func.sum(c.input_tokens).label("input_tokens"),
            func.sum(c.output_tokens).label("output_tokens"),
            func.sum(c.cached_tokens).label("cached_tokens"),
            func.sum(c.cost).label("cost"),
        )
        .where(
            c.account_id == account_id,
            c.granularity == granularity,
            c.bucket_start >= start,
            c.bucket_start < end,
        )
        .group_by(c.provider, c.model)
        .order_by(c.provider, c.model)
    )
    return [
        ModelUsage(
            r.provider,
            r.model,
            int(r.events),
            int(r.input_tokens),
            int(r.output_tokens),
            int(r.cached_tokens),
            int(r.cost),
        )
        for r in await conn.execute(stmt)
    ]


async def usage_totals(conn: AsyncConnection) -> dict[str, int]:
    """Sum of event costs per account (for reconcile)."""
    stmt = select(usage_events.c.account_id, func.sum(usage_events.c.cost)).group_by(
        usage_events.c.account_id
    )
    return {row[0]: int(row[1]) for row in await conn.execute(stmt)}
