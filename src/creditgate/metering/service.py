"""Usage ingestion: validate, price, store once per event id, debit the ledger, roll up.

A batch is stored in one transaction, possibly together with other batches (the usage
workflow groups concurrent requests: see workflows/usage.py). Invalid events are rejected alone; duplicates
(an id already stored for the account, or repeated earlier in the batch or group) are
counted and never charged. The debit is one ledger entry per account per transaction, so
the ledger stays small while every event keeps its own exact cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.clock import EPOCH
from creditgate.errors import ValidationError
from creditgate.ledger import service as ledger
from creditgate.metering import applier
from creditgate.metering import repository as repo
from creditgate.metering.catalog import PriceCatalog
from creditgate.metering.events import MAX_EVENT_COST, UsageEvent, parse_event
from creditgate.metering.repository import ModelUsage, UsageBucket
from creditgate.money import usage_cost

MAX_BATCH = 1000
PARSE_CHUNK = 25  # events parsed between two yields to the event loop
_ROLLUP_SUMS = ("events", "input_tokens", "output_tokens", "cached_tokens", "cost")


@dataclass(frozen=True, slots=True)
class Rejection:
    """One event of a batch that was not stored: its index in the batch, why, and which field."""

    index: int
    error: str
    field: str | None

    @classmethod
    def of(cls, index: int, exc: ValidationError) -> Rejection:
        return cls(index, exc.message, exc.field)

    def to_wire(self) -> dict[str, Any]:
        return {"index": self.index, "error": self.error, "field": self.field}


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    charged: dict[str, int] = field(default_factory=dict)  # account_id -> units debited
    # (account_id, event_id) -> cost of the events stored for a hold (see `store_parsed`)
    held_costs: dict[tuple[str, str], int] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.to_wire() for r in self.rejected],
        }


@dataclass(slots=True)
class PricedEvent:
    event: UsageEvent
    provider: str
    cost: int
    price_id: int | None


def parse_batch(
    events: Any, principal: Principal, now: datetime
) -> tuple[list[tuple[int, UsageEvent]], list[Rejection]]:
    """Validate a batch without touching the database. A token scoped to one account may only
    report that account's usage (PermissionDenied for the whole batch otherwise)."""
    _check_batch(events)
    good: list[tuple[int, UsageEvent]] = []
    rejected: list[Rejection] = []
    _parse_into(events, 0, len(events), now, good, rejected)
    _check_scope(good, principal)
    return good, rejected


async def parse_batch_yielding(
    events: Any, principal: Principal, now: datetime, *, chunk: int = PARSE_CHUNK
) -> tuple[list[tuple[int, UsageEvent]], list[Rejection]]:
    """`parse_batch` for the event loop: it yields every `chunk` events, so a large batch does
    not hold the loop while other requests' transactions wait for their database replies."""
    _check_batch(events)
    good: list[tuple[int, UsageEvent]] = []
    rejected: list[Rejection] = []
    for start in range(0, len(events), chunk):
        if start:
            await asyncio.sleep(0)
        _parse_into(events, start, min(start + chunk, len(events)), now, good, rejected)
    _check_scope(good, principal)
    return good, rejected


def _check_batch(events: Any) -> None:
    if not isinstance(events, list):
        raise ValidationError("events must be a list", field="events")
    if len(events) > MAX_BATCH:
        raise ValidationError(f"a batch holds at most {MAX_BATCH} events", field="events")


def _parse_into(
    events: list[Any],
    start: int,
    stop: int,
    now: datetime,
    good: list[tuple[int, UsageEvent]],
    rejected: list[Rejection],
) -> None:
    for index in range(start, stop):
        try:
            good.append((index, parse_event(events[index], now)))
        except ValidationError as exc:
            rejected.append(Rejection.of(index, exc))


def _check_scope(good: list[tuple[int, UsageEvent]], principal: Principal) -> None:
    for account_id in {e.account_id for _, e in good}:
        principal.require("gateway", account_id)


def price_event(event: UsageEvent, catalog: PriceCatalog) -> PricedEvent:
    if event.cost_override is not None:
        provider = event.provider or catalog.provider_for(event.model) or "unknown"
        return PricedEvent(event, provider, event.cost_override, None)
    price = catalog.lookup(event.provider, event.model, event.occurred_at)
    cost = usage_cost(
        event.input_tokens,
        event.output_tokens,
        event.cached_tokens,
        price.input_rate,
        price.output_rate,
        price.cached_input_rate,
        price.request_fee,
    )
    if cost > MAX_EVENT_COST:
        raise ValidationError("the priced cost of this event is larger than one event may cost", field="cost")
    return PricedEvent(event, price.provider, cost, price.id)


@dataclass
class ParsedBatch:
    """A validated batch waiting to be stored: what `parse_batch` returned."""

    events: list[tuple[int, UsageEvent]]
    rejected: list[Rejection]


async def ingest(
    conn: AsyncConnection,
    events: Any,
    principal: Principal,
    catalog: PriceCatalog,
    now: datetime,
    *,
    holds: Mapping[tuple[str, str], str] | None = None,
    apply: bool = True,
) -> IngestResult:
    """Ingest one batch inside the caller's transaction; `apply=False` only stores it and
    queues its cost for the applier (as deferred ingest does)."""
    good, rejected = parse_batch(events, principal, now)
    batches = [ParsedBatch(good, rejected)]
    if not apply:
        return (await store_parsed(conn, batches, catalog, now, holds=holds))[0][0]
    return (await ingest_parsed(conn, batches, catalog, now, holds=holds))[0]


async def ingest_parsed(
    conn: AsyncConnection,
    batches: list[ParsedBatch],
    catalog: PriceCatalog,
    now: datetime,
    *,
    holds: Mapping[tuple[str, str], str] | None = None,
) -> list[IngestResult]:
    """`store_parsed`, then apply what it queued in the same transaction (the inline mode:
    the debit, rollups and spend are written before the answer)."""
    results, pending = await store_parsed(conn, batches, catalog, now, holds=holds)
    await applier.apply_pending(conn, now, rows=pending)
    return results


async def store_parsed(
    conn: AsyncConnection,
    batches: list[ParsedBatch],
    catalog: PriceCatalog,
    now: datetime,
    *,
    holds: Mapping[tuple[str, str], str] | None = None,
) -> tuple[list[IngestResult], list[tuple[int, str]]]:
    """Store several validated batches in the caller's transaction, exactly as if they had
    been ingested one after the other in list order (an id repeated by a later batch is that
    batch's duplicate), and queue their cost for the applier (metering/applier.py). No account
    is locked: one read of the balances (to reject unknown accounts, and a debit that would
    take a balance past its bound), one statement for the events and the queue. `holds`: the
    hold each event settles, by (account_id, event_id), stored with the event; the cost of
    each such event stored now is in its result's `held_costs`. Returns the results and the
    queued rows, as (id, account_id)."""
    results = [IngestResult(rejected=list(b.rejected)) for b in batches]
    accounts = {e.account_id for b in batches for _, e in b.events}
    if not accounts:
        return results, []
    balances = await ledger.read_balances(conn, accounts)
    await catalog.refresh(conn)
    priced: list[tuple[int, PricedEvent]] = []
    seen: set[tuple[str, str]] = set()
    for number, batch in enumerate(batches):
        result = results[number]
        for index, event in batch.events:
            if event.account_id not in balances:
                result.rejected.append(Rejection(index, "account_id: no such account", "account_id"))
                continue
            key = (event.account_id, event.id)
            if key in seen:
                result.duplicates += 1
                continue
            try:
                priced.append((number, price_event(event, catalog)))
            except ValidationError as exc:
                result.rejected.append(Rejection.of(index, exc))
                continue
            seen.add(key)
        result.rejected.sort(key=lambda r: r.index)

    def pending_hours(inserted: set[tuple[str, str]]) -> dict[str, list[Any]]:
        return hour_columns([p for _, p in priced if (p.event.account_id, p.event.id) in inserted])

    stored = await repo.store_events(
        conn, _event_columns(priced, holds or {}), pending_hours, received_at=now
    )
    charged: dict[str, int] = {}
    for number, p in priced:
        result = results[number]
        if (p.event.account_id, p.event.id) not in stored.inserted:
            result.duplicates += 1
            continue
        result.accepted += 1
        if holds and (p.event.account_id, p.event.id) in holds:
            result.held_costs[(p.event.account_id, p.event.id)] = p.cost
        result.charged[p.event.account_id] = result.charged.get(p.event.account_id, 0) + p.cost
        charged[p.event.account_id] = charged.get(p.event.account_id, 0) + p.cost
    for account_id, cost in charged.items():  # the applier's debit must not fail later
        ledger.check_bound(account_id, balances[account_id] - cost)
    return results, stored.pending


def _event_columns(
    priced: list[tuple[int, PricedEvent]], holds: Mapping[tuple[str, str], str]
) -> dict[str, list[Any]]:
    events = [p.event for _, p in priced]
    return {
        "account_id": [e.account_id for e in events],
        "event_id": [e.id for e in events],
        "occurred_at": [e.occurred_at for e in events],
        "provider": [p.provider for _, p in priced],
        "model": [e.model for e in events],
        "input_tokens": [e.input_tokens for e in events],
        "output_tokens": [e.output_tokens for e in events],
        "cached_tokens": [e.cached_tokens for e in events],
        "cost": [p.cost for _, p in priced],
        "price_id": [p.price_id for _, p in priced],
        "api_key_id": [e.api_key_id for e in events],
        "hold_id": [holds.get((e.account_id, e.id)) for e in events],
        "metadata": [e.metadata for e in events],
        "metadata_json": [e.metadata_json for e in events],
    }


def bucket_start(moment: datetime, granularity: str) -> datetime:
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if granularity == "hour" else hour.replace(hour=0)


def hour_columns(stored: list[PricedEvent]) -> dict[str, list[Any]]:
    """Sum the events per (account, hour, provider, model, api key), column-wise; integer hour
    numbers instead of datetime arithmetic per event (this is the hot path). Day buckets are
    summed from these hours by the repository."""
    hours: dict[tuple[str, int, str, str, str], list[int]] = {}
    for p in stored:
        e = p.event
        key = (e.account_id, int(e.occurred_at.timestamp()) // 3600, p.provider, e.model, e.api_key_id or "")
        acc = hours.get(key)
        if acc is None:
            hours[key] = [1, e.input_tokens, e.output_tokens, e.cached_tokens, p.cost]
        else:
            acc[0] += 1
            acc[1] += e.input_tokens
            acc[2] += e.output_tokens
            acc[3] += e.cached_tokens
            acc[4] += p.cost
    columns: dict[str, list[Any]] = {
        name: [] for name in ("account_id", "bucket_start", "provider", "model", "api_key_id", *_ROLLUP_SUMS)
    }
    starts: dict[int, datetime] = {}
    for (account_id, hour, provider, model, api_key_id), sums in hours.items():
        start = starts.get(hour)
        if start is None:
            start = starts[hour] = EPOCH + timedelta(hours=hour)
        columns["account_id"].append(account_id)
        columns["bucket_start"].append(start)
        columns["provider"].append(provider)
        columns["model"].append(model)
        columns["api_key_id"].append(api_key_id)
        for name, value in zip(_ROLLUP_SUMS, sums, strict=True):
            columns[name].append(value)
    return columns


async def usage_buckets(
    conn: AsyncConnection, account_id: str, granularity: str, start: datetime, end: datetime
) -> list[UsageBucket]:
    """Spend per hour or day bucket over [start, end), empty buckets left out."""
    if granularity not in ("hour", "day"):
        raise ValidationError("granularity must be hour or day", field="granularity")
    return await repo.rollups(conn, account_id, granularity, start, end)


async def usage_by_model(
    conn: AsyncConnection, account_id: str, start: datetime, end: datetime
) -> list[ModelUsage]:
    """Totals per provider/model over [start, end). Uses day rollups when both ends fall on day
    boundaries, hour rollups otherwise."""
    aligned = start == bucket_start(start, "day") and end == bucket_start(end, "day")
    return await repo.rollups_by_model(conn, account_id, "day" if aligned else "hour", start, end)


async def usage_totals(conn: AsyncConnection) -> dict[str, int]:
    return await repo.usage_totals(conn)
