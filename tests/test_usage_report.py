"""The usage read models of the portal and the console, on SQLite and PostgreSQL: spend per
day and per hour by model, the table by model and its CSV all add up to exactly the stored
events, and all of the account's usage equals its usage debits in the ledger."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import pytest

from creditgate.errors import ValidationError
from creditgate.money import parse_usd
from creditgate.workflows import usage_report
from creditgate.workflows.context import Context
from tests import support, usage_support

T = TypeVar("T")
NOW = datetime(2026, 3, 20, 15, 30, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)


def run(database_url: str, scenario: Callable[[Context], Awaitable[T]]) -> T:
    return usage_support.run_at(database_url, NOW, scenario)


@pytest.fixture(scope="module")
def seeded(server: support.LiveServer, database_url: str) -> tuple[str, list[usage_support.StoredEvent]]:
    account = support.create_account(server)
    usage_support.seed_usage(server, account, NOW)
    events = usage_support.stored_events(database_url, account)
    assert len(events) == 160
    return account, events


def _by_key(chart: usage_report.SpendChart) -> dict[tuple[str, str], list[int]]:
    return {(s.provider, s.model): s.values for s in chart.series}


def test_daily_spend_matches_the_events(
    database_url: str, seeded: tuple[str, list[usage_support.StoredEvent]]
) -> None:
    account, events = seeded
    chart = run(database_url, lambda ctx: usage_report.daily_spend(ctx, account))
    start = datetime(2026, 2, 19, tzinfo=UTC)
    assert chart.granularity == "day"
    assert chart.starts == [start + i * DAY for i in range(30)]
    assert chart.starts[-1].date() == NOW.date()
    expected = usage_support.cost_per_bucket(events, start, start + 30 * DAY, DAY)
    assert _by_key(chart) == expected
    assert chart.totals == [sum(v[i] for v in expected.values()) for i in range(30)]
    # the label names the provider only where one model name has several
    labels = {(s.provider, s.model): s.label for s in chart.series}
    assert labels[("openai", "gpt-4o-mini")] == "gpt-4o-mini"
    assert labels[("openai", "gpt-4o")] == "openai/gpt-4o"
    assert labels[("azure", "gpt-4o")] == "azure/gpt-4o"
    assert [s.label for s in chart.series] == sorted(s.label for s in chart.series)


def test_hourly_spend_matches_the_events(
    database_url: str, seeded: tuple[str, list[usage_support.StoredEvent]]
) -> None:
    account, events = seeded
    busiest = max(
        {e.occurred_at.date() for e in events},
        key=lambda d: sum(1 for e in events if e.occurred_at.date() == d),
    )
    chart = run(database_url, lambda ctx: usage_report.hourly_spend(ctx, account, busiest))
    start = datetime(busiest.year, busiest.month, busiest.day, tzinfo=UTC)
    assert chart.starts == [start + i * HOUR for i in range(24)]
    expected = usage_support.cost_per_bucket(events, start, start + DAY, HOUR)
    assert expected and _by_key(chart) == expected
    empty = run(database_url, lambda ctx: usage_report.hourly_spend(ctx, account, date(2025, 1, 1)))
    assert empty.series == [] and empty.totals == [0] * 24


def test_table_and_csv_match_the_events(
    database_url: str, seeded: tuple[str, list[usage_support.StoredEvent]]
) -> None:
    account, events = seeded
    period = usage_report.last_days(NOW.date())
    rows = run(database_url, lambda ctx: usage_report.usage_by_model(ctx, account, period))
    expected = usage_support.totals_by_model(events, period.start, period.end)
    got = {
        (r.provider, r.model): [r.requests, r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cost]
        for r in rows
    }
    assert got == expected
    parsed = list(csv.reader(io.StringIO(usage_report.to_csv(rows))))
    assert tuple(parsed[0]) == usage_report.CSV_HEADER
    from_csv = {
        (p, m): [int(a), int(b), int(c), int(d), parse_usd(cost)] for p, m, a, b, c, d, cost in parsed[1:]
    }
    assert from_csv == expected


def test_all_usage_equals_the_ledger_debits(
    database_url: str, seeded: tuple[str, list[usage_support.StoredEvent]]
) -> None:
    account, events = seeded
    everything = usage_report.Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    rows = run(database_url, lambda ctx: usage_report.usage_by_model(ctx, account, everything))
    debits = support.query(
        database_url,
        "SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account_id = :a AND kind = 'usage'",
        a=account,
    )[0][0]
    assert sum(r.cost for r in rows) == sum(e.cost for e in events) == -int(debits)


def test_another_account_sees_nothing(database_url: str, server: support.LiveServer, seeded: object) -> None:
    other = support.create_account(server)
    chart = run(database_url, lambda ctx: usage_report.daily_spend(ctx, other))
    assert chart.series == [] and chart.totals == [0] * 30


@pytest.mark.parametrize(
    "text", ["2026-3-1", "yesterday", "2026-03-21", "1999-12-31", "2026-02-30", "20260301"]
)
def test_parse_day_rejects(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        usage_report.parse_day(text, NOW.date())
    assert info.value.field == "day"


def test_parse_day_accepts() -> None:
    assert usage_report.parse_day("", NOW.date()) == NOW.date()
    assert usage_report.parse_day(None, NOW.date()) == NOW.date()
    assert usage_report.parse_day("2026-03-01", NOW.date()) == date(2026, 3, 1)


def test_csv_cells_never_start_a_formula() -> None:
    rows = [
        usage_report.ModelRow("=cmd", "@SUM(A1)", 1, 2, 3, 4, 5),
        usage_report.ModelRow("p", "-x", 0, 0, 0, 0, 0),
    ]
    parsed = list(csv.reader(io.StringIO(usage_report.to_csv(rows))))
    assert parsed[1][:2] == ["'=cmd", "'@SUM(A1)"]
    assert parsed[1][6] == "0.000000005"
    assert parsed[2][1] == "'-x"
