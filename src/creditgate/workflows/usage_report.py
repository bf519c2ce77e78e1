"""Usage read models for the portal and the console: spend per UTC day by model over the last
30 days, spend per hour by model over one UTC day, and totals by model (as a table and as
CSV). Amounts stay exact integers (ledger units) until they are displayed."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from creditgate.errors import ValidationError
from creditgate.metering import service as metering
from creditgate.metering import usage_report as report
from creditgate.money import to_usd_string
from creditgate.workflows.context import Context

DAYS = 30
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
FIRST_DAY = date(2000, 1, 1)
CSV_HEADER = (
    "provider",
    "model",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
)


@dataclass(frozen=True)
class Series:
    """One model's spend per bucket (ledger units), aligned with the chart's `starts`."""

    label: str  # the model; "provider/model" when one model name has several providers
    provider: str
    model: str
    values: list[int]

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True)
class SpendChart:
    granularity: str  # hour | day
    starts: list[datetime]  # the UTC start of each bucket
    series: list[Series]  # sorted by label

    @property
    def totals(self) -> list[int]:
        """Spend per bucket over every model."""
        return [sum(s.values[i] for s in self.series) for i in range(len(self.starts))]


@dataclass(frozen=True)
class ModelRow:
    """One provider/model's usage over a period."""

    provider: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost: int  # ledger units


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, whole days."""

    start: datetime
    end: datetime


def utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def last_days(today: date, days: int = DAYS) -> Period:
    """The `days` UTC days that end with `today` (today included)."""
    return Period(utc_midnight(today - timedelta(days=days - 1)), utc_midnight(today) + DAY)


def one_day(day: date) -> Period:
    return Period(utc_midnight(day), utc_midnight(day) + DAY)


def parse_day(text: str | None, today: date) -> date:
    """A YYYY-MM-DD day from a form, from 2000-01-01 up to today; empty means today."""
    if not text:
        return today
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError("day must be a date such as 2026-03-09", field="day") from exc
    if len(text) != 10 or not FIRST_DAY <= day <= today:
        raise ValidationError(f"day must be between {FIRST_DAY} and {today} (YYYY-MM-DD)", field="day")
    return day


def _chart(granularity: str, period: Period, rows: list[report.BucketSpend]) -> SpendChart:
    step = DAY if granularity == "day" else HOUR
    count = (period.end - period.start) // step
    starts = [period.start + i * step for i in range(count)]
    providers: dict[str, set[str]] = {}
    for row in rows:
        providers.setdefault(row.model, set()).add(row.provider)
    values: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        column = values.setdefault((row.provider, row.model), [0] * count)
        column[(row.bucket_start - period.start) // step] += row.cost
    series = [
        Series(model if len(providers[model]) == 1 else f"{provider}/{model}", provider, model, column)
        for (provider, model), column in values.items()
    ]
    return SpendChart(granularity, starts, sorted(series, key=lambda s: (s.label, s.provider)))


async def daily_spend(ctx: Context, account_id: str, *, days: int = DAYS) -> SpendChart:
    """Spend per UTC day and model over the last `days` days, today included."""
    period = last_days(ctx.clock().date(), days)
    async with ctx.db.read() as conn:
        rows = await report.spend_by_bucket_and_model(conn, account_id, "day", period.start, period.end)
    return _chart("day", period, rows)


async def hourly_spend(ctx: Context, account_id: str, day: date) -> SpendChart:
    """Spend per hour and model over one UTC day."""
    period = one_day(day)
    async with ctx.db.read() as conn:
        rows = await report.spend_by_bucket_and_model(conn, account_id, "hour", period.start, period.end)
    return _chart("hour", period, rows)


async def usage_by_model(ctx: Context, account_id: str, period: Period) -> list[ModelRow]:
    """Requests, tokens and cost per provider/model over the period."""
    async with ctx.db.read() as conn:
        totals = await metering.usage_by_model(conn, account_id, period.start, period.end)
    return [
        ModelRow(t.provider, t.model, t.events, t.input_tokens, t.output_tokens, t.cached_tokens, t.cost)
        for t in totals
    ]


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(rows: list[ModelRow]) -> str:
    """The table by model as CSV; cost as an exact USD decimal."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow(
            (
                _cell(r.provider),
                _cell(r.model),
                r.requests,
                r.prompt_tokens,
                r.completion_tokens,
                r.cached_tokens,
                to_usd_string(r.cost),
            )
        )
    return out.getvalue()
