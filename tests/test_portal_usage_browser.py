"""The portal's usage page in a real browser (headless chromium through Playwright), on SQLite
and PostgreSQL: the 30-day chart has one series per model with exactly the seeded spend, the
day picker draws that day's hours, the CSV download holds the table's rows, and a model name
with markup stays text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from creditgate.clock import to_ms
from creditgate.money import parse_usd
from creditgate.workflows import usage_report
from tests import support, usage_support
from tests.portal_support import link_path, portal_link
from tests.support import LiveServer

DAY = timedelta(days=1)


def open_usage(page: Page, server: LiveServer, account: str) -> None:
    page.goto(link_path(portal_link(server, account)))
    expect(page).to_have_url(server.base_url + "/portal")
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Usage")


def chart_series(page: Page, chart_id: str) -> dict[str, int]:
    """{series label: its total} as the chart draws it; each total is the sum of its bars."""
    found = {}
    for group in page.locator(f"svg#{chart_id} g.series").all():
        values = [
            int(v or 0) for v in group.locator("rect").evaluate_all("rs => rs.map(r => r.dataset.value)")
        ]
        total = int(group.get_attribute("data-total") or -1)
        assert sum(values) == total
        found[group.get_attribute("data-series") or ""] = total
    return found


def expected_series(
    events: list[usage_support.StoredEvent], start: datetime, end: datetime
) -> dict[str, int]:
    per_key = usage_support.totals_by_model(events, start, end)
    names: dict[str, int] = {}
    for _, model in per_key:
        names[model] = names.get(model, 0) + 1
    return {
        (model if names[model] == 1 else f"{provider}/{model}"): sums[4]
        for (provider, model), sums in per_key.items()
    }


def test_the_chart_has_one_series_per_model(page: Page, server: LiveServer, database_url: str) -> None:
    account = support.create_account(server, name="Usage Co")
    usage_support.seed_usage(server, account, datetime.now(UTC), count=120, days=40, seed=11)
    events = usage_support.stored_events(database_url, account)
    open_usage(page, server, account)
    period = usage_report.last_days(datetime.now(UTC).date())
    want = expected_series(events, period.start, period.end)
    assert len(want) == len(usage_support.MODELS)
    assert chart_series(page, "chart-daily") == want
    legend = page.locator("#chart-daily-legend li")
    assert sorted(legend.evaluate_all("items => items.map(i => i.dataset.series)")) == sorted(want)
    for label in want:
        expect(legend.filter(has_text=label).first).to_be_visible()

    busiest = max(
        {e.occurred_at.date() for e in events if e.occurred_at >= period.start},
        key=lambda d: sum(1 for e in events if e.occurred_at.date() == d),
    )
    page.get_by_label("Day (UTC)").fill(busiest.isoformat())
    page.get_by_role("button", name="Show day").click()
    expect(page.get_by_role("heading", name=f"Spend per hour on {busiest.isoformat()} (UTC)")).to_be_visible()
    start = datetime(busiest.year, busiest.month, busiest.day, tzinfo=UTC)
    assert chart_series(page, "chart-hourly") == expected_series(events, start, start + DAY)
    assert page.locator("svg#chart-hourly > g.axis text").first.is_visible()


def _table(page: Page, table_id: str) -> list[list[str]]:
    rows = []
    for row in page.locator(f"#{table_id} tbody tr").all():
        cells = [c.strip() for c in row.locator("th, td").all_inner_texts()]
        rows.append(cells)
    return rows


def test_the_csv_holds_the_tables_rows(
    page: Page, server: LiveServer, database_url: str, tmp_path: Path
) -> None:
    account = support.create_account(server)
    usage_support.seed_usage(server, account, datetime.now(UTC), count=70, days=20, seed=3)
    events = usage_support.stored_events(database_url, account)
    open_usage(page, server, account)
    with page.expect_download() as info:
        page.locator("#usage-30-days").locator("xpath=../..").get_by_role("link", name="Download CSV").click()
    saved = tmp_path / "usage.csv"
    info.value.save_as(saved)
    parsed = list(csv.reader(io.StringIO(saved.read_text())))
    assert tuple(parsed[0]) == usage_report.CSV_HEADER
    period = usage_report.last_days(datetime.now(UTC).date())
    want = usage_support.totals_by_model(events, period.start, period.end)
    got = {(p, m): [int(a), int(b), int(c), int(d), parse_usd(cost)] for p, m, a, b, c, d, cost in parsed[1:]}
    assert got == want
    shown = {
        (provider, model): [int(n.replace(",", "")) for n in numbers[:4]]
        + [parse_usd(numbers[4][1:].replace(",", ""))]
        for model, provider, *numbers in _table(page, "usage-30-days")
    }
    assert shown == want


def test_a_bad_day_is_a_clear_message(page: Page, server: LiveServer) -> None:
    account = support.create_account(server)
    open_usage(page, server, account)
    tomorrow = (datetime.now(UTC).date() + DAY).isoformat()
    response = page.goto(f"/portal/usage?day={tomorrow}")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("day must be between")
    expect(page.locator("#usage-one-day tbody")).to_have_text("No usage in this period.")
    assert date.fromisoformat(page.get_by_label("Day (UTC)").input_value()) == datetime.now(UTC).date()


def test_a_model_name_with_markup_stays_text(page: Page, server: LiveServer) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    account = support.create_account(server)
    evil = "<img src=x onerror=alert(1)>"
    event = {
        "id": "x1",
        "account_id": account,
        "model": evil,
        "provider": "<b>acme</b>",
        "input_tokens": 10,
        "output_tokens": 1,
        "cost_usd": "0.25",
        "timestamp": to_ms(datetime.now(UTC) - timedelta(minutes=5)),
    }
    with server.admin() as c:
        assert c.post("/v1/gateway/usage", json={"events": [event]}).json()["rejected"] == []
    open_usage(page, server, account)
    assert chart_series(page, "chart-daily") == {evil: 250_000_000}
    expect(page.locator("#usage-30-days tbody tr").first).to_contain_text(evil)
    assert page.locator("main img").count() == 0
    assert dialogs == []
