"""Usage ingestion: validate, price, store once per event id, debit the ledger, roll up.

One batch is one transaction. Invalid events are rejected alone; duplicates (an id already
stored for the account, or repeated inside the batch) are counted and never charged. The
debit is one ledger entry per account per batch, so the ledger stays small while every
event keeps its own exact cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.errors import ValidationError
from creditgate.ledger import service as ledger
from creditgate.limits import service as limits
from creditgate.metering import repository as repo
from creditgate.metering.catalog import PriceCatalog
from creditgate.metering.events import UsageEvent, parse_event
from creditgate.money import usage_cost

MAX_BATCH = 1000
_ROLLUP_SUMS = ("events", "input_tokens", "output_tokens", "cached_tokens", "cost")


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    charged: dict[str, int] = field(default_factory=dict)  # account_id -> units debited

    def to_wire(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


@dataclass(slots=True)
class PricedEvent:
    event: UsageEvent
    provider: str
    cost: int
    price_id: int | None


def parse_batch(
    events: Any, principal: Principal, now: datetime
) -> tuple[list[tuple[int, UsageEvent]], list[dict[str, Any]]]:
    """Validate a batch without touching the database. A token scoped to one account may only
    report that account's usage (PermissionDenied for the whole batch otherwise)."""
    if not isinstance(events, list):
        raise ValidationError("events must be a list", field="events")
    if len(events) > MAX_BATCH:
        raise ValidationError(f"a batch holds at most {MAX_BATCH} events", field="events")
    good: list[tuple[int, UsageEvent]] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(events):
        try:
            good.append((index, parse_event(raw, now)))
        except ValidationError as exc:
            rejected.append({"index": index, "error": exc.message, "field": exc.field})
    for account_id in {e.account_id for _, e in good}:
        principal.require("gateway", account_id)
    return good, rejected


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
    return PricedEvent(event, price.provider, cost, price.id)


async def ingest(
    conn: AsyncConnection,
    events: Any,
    principal: Principal,
    catalog: PriceCatalog,
    now: datetime,
    *,
    hold_id: str | None = None,
) -> IngestResult:
    """Ingest one batch inside the caller's transaction."""
    parsed, rejected = parse_batch(events, principal, now)
    result = IngestResult(rejected=rejected)
    if not parsed:
        return result
    balances = await ledger.lock(conn, {e.account_id for _, e in parsed})
    await catalog.refresh(conn)
    priced: list[PricedEvent] = []
    seen: set[tuple[str, str]] = set()
    for index, event in parsed:
        if event.account_id not in balances:
            rejected.append({"index": index, "error": "account_id: no such account", "field": "account_id"})
            continue
        key = (event.account_id, event.id)
        if key in seen:
            result.duplicates += 1
            continue
        try:
            priced.append(price_event(event, catalog))
        except ValidationError as exc:
            rejected.append({"index": index, "error": exc.message, "field": exc.field})
            continue
        seen.add(key)
    rejected.sort(key=lambda r: r["index"])
    inserted = await repo.insert_new_events(conn, [_event_row(p, now, hold_id) for p in priced])
    stored = [p for p in priced if (p.event.account_id, p.event.id) in inserted]
    result.accepted = len(stored)
    result.duplicates += len(priced) - len(stored)
    for p in stored:
        result.charged[p.event.account_id] = result.charged.get(p.event.account_id, 0) + p.cost
    postings = [
        ledger.Posting(account_id=a, kind="usage", amount=-cost, reason="usage")
        for a, cost in sorted(result.charged.items())
        if cost > 0
    ]
    await ledger.post(conn, postings, now, locked=balances)
    await repo.add_to_rollups(conn, _rollup_rows(stored))
    # Enforcement hook: recorded spend counts against spending-limit windows (same transaction,
    # accounts already locked above). Kept to this one call; see limits.service.record_spend.
    await limits.record_spend(conn, result.charged, now)
    return result


def _event_row(p: PricedEvent, now: datetime, hold_id: str | None) -> dict[str, Any]:
    e = p.event
    return {
        "account_id": e.account_id,
        "event_id": e.id,
        "occurred_at": e.occurred_at,
        "provider": p.provider,
        "model": e.model,
        "input_tokens": e.input_tokens,
        "output_tokens": e.output_tokens,
        "cached_tokens": e.cached_tokens,
        "cost": p.cost,
        "price_id": p.price_id,
        "hold_id": hold_id,
        "metadata": e.metadata,
        "received_at": now,
    }


def bucket_start(moment: datetime, granularity: str) -> datetime:
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if granularity == "hour" else hour.replace(hour=0)


def _rollup_rows(stored: list[PricedEvent]) -> list[dict[str, Any]]:
    sums: dict[tuple[str, str, datetime, str, str], list[int]] = {}
    for p in stored:
        e = p.event
        for granularity in ("hour", "day"):
            key = (e.account_id, granularity, bucket_start(e.occurred_at, granularity), p.provider, e.model)
            acc = sums.setdefault(key, [0, 0, 0, 0, 0])
            acc[0] += 1
            acc[1] += e.input_tokens
            acc[2] += e.output_tokens
            acc[3] += e.cached_tokens
            acc[4] += p.cost
    return [
        {
            "account_id": k[0],
            "granularity": k[1],
            "bucket_start": k[2],
            "provider": k[3],
            "model": k[4],
            **dict(zip(_ROLLUP_SUMS, v, strict=True)),
        }
        for k, v in sums.items()
    ]


async def usage_buckets(
    conn: AsyncConnection, account_id: str, granularity: str, start: datetime, end: datetime
) -> list[Any]:
    """Spend per hour or day bucket over [start, end), empty buckets left out."""
    if granularity not in ("hour", "day"):
        raise ValidationError("granularity must be hour or day", field="granularity")
    return await repo.rollups(conn, account_id, granularity, start, end)


async def usage_by_model(conn: AsyncConnection, account_id: str, start: datetime, end: datetime) -> list[Any]:
    """Totals per provider/model over [start, end). Uses day rollups when both ends fall on day
    boundaries, hour rollups otherwise."""
    aligned = start == bucket_start(start, "day") and end == bucket_start(end, "day")
    return await repo.rollups_by_model(conn, account_id, "day" if aligned else "hour", start, end)


async def usage_totals(conn: AsyncConnection) -> dict[str, int]:
    return await repo.usage_totals(conn)


async def list_events(conn: AsyncConnection, account_id: str, *, limit: int = 100) -> list[Any]:
    return await repo.list_events(conn, account_id, limit=limit)
