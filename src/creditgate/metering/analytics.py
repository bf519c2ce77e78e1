"""Usage analytics: sums and counts of billing items per calendar bucket in a time zone,
grouped and filtered by model, provider, api key and unit type, read from the usage rollups.

Whole UTC days inside one bucket come from the day rollups, other whole UTC hours from the
hour rollups, and only hours cut by a bucket edge (zones whose offset is not whole hours, or
a range that starts or ends inside an hour) from the stored events, so the answer is exact.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.errors import ValidationError
from creditgate.metering import unit_types
from creditgate.metering.buckets import HOUR, bucket_starts
from creditgate.metering.catalog import PriceCatalog
from creditgate.metering.models import usage_events, usage_rollups

FIELDS = ("description", "api_key_id", "unit_type", "model", "provider")
# (value name, aggregation) -> what is summed; COUNT of any value counts requests.
MEASURES = {
    ("usd", "sum"): "cost",
    ("tokens", "sum"): "tokens",
    ("prompt_tokens", "sum"): "prompt_tokens",
    ("cached_prompt_tokens", "sum"): "cached_prompt_tokens",
    ("completion_tokens", "sum"): "completion_tokens",
}
MAX_BUCKETS = 10_000
MAX_CELLS = 100_000  # series x points; more series than fit are left out (limit_reached)
MAX_RAW_HOURS = 24 * 31  # hours read from single events when bucket edges cut UTC hours
MAX_RANGE = timedelta(days=3660)
DAY = timedelta(days=1)
_CHUNK = 200


@dataclass(frozen=True)
class Filter:
    field: str
    value: str
    negate: bool = False


@dataclass(frozen=True)
class Query:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    zone: ZoneInfo
    unit: str  # buckets.UNITS
    measures: tuple[tuple[str, str], ...]  # (value name, "sum" | "count")
    group_by: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()


@dataclass(frozen=True)
class Series:
    group: tuple[str, ...]
    points: list[list[int]]  # per bucket, one integer per measure (ledger units for usd)


@dataclass(frozen=True)
class Result:
    starts: list[datetime]  # the UTC start of each bucket
    series: list[Series]
    limit_reached: bool


@dataclass(frozen=True)
class _Row:
    at: datetime
    provider: str
    model: str
    api_key_id: str  # "" when the usage came without a key
    events: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: int


def _kinds(query: Query) -> list[str]:
    kinds = []
    for name, aggregation in query.measures:
        if aggregation == "count":
            kinds.append("requests")
        elif (name, aggregation) in MEASURES:
            kinds.append(MEASURES[(name, aggregation)])
        else:
            known = ", ".join(sorted({n for n, _ in MEASURES}))
            raise ValidationError(
                f"value {name!r} with {aggregation} is not supported (SUM of {known}, or COUNT)",
                field="values",
            )
    return kinds


def check(query: Query) -> list[str]:
    """Validate the query; returns what each measure sums."""
    for name in (*query.group_by, *(f.field for f in query.filters)):
        if name not in FIELDS:
            raise ValidationError(
                f"{name!r} is not a supported field (supported: {', '.join(FIELDS)})",
                field="groupBy" if name in query.group_by else "filters",
            )
    if not query.start < query.end:
        raise ValidationError("startTime must be before endTime", field="timeRange")
    if query.end - query.start > MAX_RANGE:
        raise ValidationError(f"the range may span at most {MAX_RANGE.days} days", field="timeRange")
    kinds = _kinds(query)
    if not kinds:
        raise ValidationError(
            "values must name at least one value, e.g. usd with AGGREGATION_SUM", field="values"
        )
    if "requests" in kinds and _splits(query):
        raise ValidationError("COUNT counts requests and cannot be split by unit_type", field="values")
    return kinds


def _splits(query: Query) -> bool:
    return "unit_type" in query.group_by or any(f.field == "unit_type" for f in query.filters)


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _runs(pieces: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    runs: list[tuple[datetime, datetime]] = []
    for a, b in pieces:
        if runs and runs[-1][1] == a:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return runs


def plan(start: datetime, end: datetime, edges: Sequence[datetime]) -> tuple[list[Any], list[Any], list[Any]]:
    """(day runs, hour runs, event runs): which stretches of [start, end) to read from the
    day rollups, the hour rollups and the stored events, so no rollup row crosses an edge."""

    def cut(a: datetime, b: datetime) -> bool:  # an edge strictly inside (a, b)
        i = bisect_right(edges, a)
        return i < len(edges) and edges[i] < b

    days, hours, raw = [], [], []
    h = _floor_hour(start)
    while h < end:
        day = h.replace(hour=0)
        if h == day and day >= start and day + DAY <= end and not cut(day, day + DAY):
            days.append((day, day + DAY))
            h = day + DAY
            continue
        if h >= start and h + HOUR <= end and not cut(h, h + HOUR):
            hours.append((h, h + HOUR))
        else:
            raw.append((max(h, start), min(h + HOUR, end)))
        h += HOUR
    if len(raw) > MAX_RAW_HOURS:
        raise ValidationError(
            f"this range cuts more than {MAX_RAW_HOURS} UTC hours (a time zone whose offset is not whole "
            "hours with TIME_UNIT_HOUR); ask for a shorter range or a larger time unit",
            field="timeRange",
        )
    return _runs(days), _runs(hours), _runs(raw)


def _between(column: Any, runs: list[tuple[datetime, datetime]]) -> Any:
    return or_(*(and_(column >= a, column < b) for a, b in runs))


async def _rollup_rows(
    conn: AsyncConnection, account_id: str, granularity: str, runs: list[Any]
) -> list[_Row]:
    c = usage_rollups.c
    rows: list[_Row] = []
    for i in range(0, len(runs), _CHUNK):
        stmt = select(
            c.bucket_start,
            c.provider,
            c.model,
            c.api_key_id,
            c.events,
            c.input_tokens,
            c.output_tokens,
            c.cached_tokens,
            c.cost,
        ).where(
            c.account_id == account_id,
            c.granularity == granularity,
            _between(c.bucket_start, runs[i : i + _CHUNK]),
        )
        rows.extend(_Row(*r) for r in await conn.execute(stmt))
    return rows


async def _event_rows(conn: AsyncConnection, account_id: str, runs: list[Any]) -> list[_Row]:
    c = usage_events.c
    rows: list[_Row] = []
    for i in range(0, len(runs), _CHUNK):
        stmt = select(
            c.occurred_at,
            c.provider,
            c.model,
            func.coalesce(c.api_key_id, ""),
            c.input_tokens,
            c.output_tokens,
            c.cached_tokens,
            c.cost,
        ).where(c.account_id == account_id, _between(c.occurred_at, runs[i : i + _CHUNK]))
        rows.extend(_Row(*r[:4], 1, *r[4:]) for r in await conn.execute(stmt))
    return rows


def _measure(kind: str, row: _Row, part: unit_types.UnitPart | None) -> int:
    if part is None:
        return {
            "cost": row.cost,
            "requests": row.events,
            "tokens": row.input_tokens + row.output_tokens,
            "prompt_tokens": row.input_tokens,
            "cached_prompt_tokens": row.cached_tokens,
            "completion_tokens": row.output_tokens,
        }[kind]
    if kind == "cost":
        return part.cost
    types = {
        "tokens": unit_types.TOKEN_TYPES,
        "prompt_tokens": (unit_types.PROMPT, unit_types.CACHED),
        "cached_prompt_tokens": (unit_types.CACHED,),
        "completion_tokens": (unit_types.COMPLETION,),
    }[kind]
    return part.units if part.unit_type in types else 0


def _matches(filters: tuple[Filter, ...], fields: dict[str, str]) -> bool:
    return all((fields[f.field] == f.value) != f.negate for f in filters if f.field in fields)


async def analyze(conn: AsyncConnection, account_id: str, query: Query, catalog: PriceCatalog) -> Result:
    """The query's dense time series over the account's usage (see the module docstring)."""
    kinds = check(query)
    starts = bucket_starts(query.start, query.end, query.zone, query.unit, MAX_BUCKETS)
    day_runs, hour_runs, raw_runs = plan(query.start, query.end, starts[1:])
    rows = await _rollup_rows(conn, account_id, "day", day_runs) if day_runs else []
    rows += await _rollup_rows(conn, account_id, "hour", hour_runs) if hour_runs else []
    rows += await _event_rows(conn, account_id, raw_runs) if raw_runs else []
    split = _splits(query)
    sums: dict[tuple[str, ...], list[list[int]]] = {}
    if not query.group_by:
        sums[()] = [[0] * len(kinds) for _ in starts]
    for row in rows:
        fields = {
            "provider": row.provider,
            "model": row.model,
            "description": row.model,
            "api_key_id": row.api_key_id,
        }
        if not _matches(query.filters, fields):
            continue
        parts: list[unit_types.UnitPart | None] = [None]
        if split:
            price = unit_types.price_at(catalog, row.provider, row.model, row.at)
            parts = list(
                unit_types.split(
                    price,
                    input_tokens=row.input_tokens,
                    cached_tokens=row.cached_tokens,
                    output_tokens=row.output_tokens,
                    events=row.events,
                    cost=row.cost,
                )
            )
        index = bisect_right(starts, row.at) - 1
        for part in parts:
            if part is not None:
                fields["unit_type"] = part.unit_type
                if not _matches(query.filters, fields):
                    continue
            group = tuple(fields[name] for name in query.group_by)
            points = sums.get(group)
            if points is None:
                points = sums[group] = [[0] * len(kinds) for _ in starts]
            point = points[index]
            for k, kind in enumerate(kinds):
                point[k] += _measure(kind, row, part)
    series = [Series(group, sums[group]) for group in sorted(sums)]
    fit = MAX_CELLS // len(starts)
    return Result(starts, series[:fit], len(series) > fit)


__all__ = ["Filter", "Query", "Result", "Series", "analyze"]
