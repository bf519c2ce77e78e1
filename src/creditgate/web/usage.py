"""The usage view shared by the portal (/portal/usage, the signed-in account) and the console
(any account): spend per day by model over 30 days and per hour for a chosen UTC day as SVG
charts, and the table by model, with the same rows as CSV."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup

from creditgate.errors import ValidationError
from creditgate.web.charts import ChartSeries, legend_html, stacked_bars
from creditgate.web.sessions import WebSession, context, portal_session
from creditgate.web.templating import money, render
from creditgate.workflows import accounts, usage_report
from creditgate.workflows.context import Context
from creditgate.workflows.usage_report import ModelRow, Period, SpendChart

router = APIRouter(prefix="/portal", include_in_schema=False)


@dataclass(frozen=True)
class Table:
    rows: list[ModelRow]
    total: ModelRow  # the column sums (provider and model empty)
    period: Period
    csv_query: str  # "" for the 30 days, "?day=YYYY-MM-DD" for one day


@dataclass(frozen=True)
class UsageView:
    today: date
    day: date
    previous_day: date
    next_day: date | None  # None when `day` is today
    daily_chart: Markup
    hourly_chart: Markup
    daily: SpendChart
    hourly: SpendChart
    month: Table  # the 30 days
    one_day: Table  # the chosen day


def _svg(chart_id: str, title: str, chart: SpendChart) -> Markup:
    if chart.granularity == "day":
        labels, every = [s.strftime("%b %d") for s in chart.starts], 5
    else:
        labels, every = [s.strftime("%H:00") for s in chart.starts], 3
    series = [ChartSeries(s.label, s.values) for s in chart.series]
    svg = stacked_bars(
        chart_id=chart_id,
        title=title,
        x_labels=labels,
        series=series,
        fmt=money,
        label_every=every,
        legend=False,
    )
    # charts.stacked_bars and charts.legend_html escape every text they draw
    return Markup(svg + legend_html(chart_id, series, money))  # noqa: S704


def _table(rows: list[ModelRow], period: Period, csv_query: str) -> Table:
    total = ModelRow(
        "",
        "",
        sum(r.requests for r in rows),
        sum(r.prompt_tokens for r in rows),
        sum(r.completion_tokens for r in rows),
        sum(r.cached_tokens for r in rows),
        sum(r.cost for r in rows),
    )
    return Table(rows, total, period, csv_query)


async def usage_view(ctx: Context, account_id: str, day_text: str | None) -> tuple[UsageView, str | None]:
    """Everything the usage page shows for one account, and what was wrong with `day` (then
    today is shown)."""
    today = ctx.clock().date()
    try:
        day, problem = usage_report.parse_day(day_text, today), None
    except ValidationError as exc:
        day, problem = today, exc.message
    daily = await usage_report.daily_spend(ctx, account_id)
    hourly = await usage_report.hourly_spend(ctx, account_id, day)
    month_period, day_period = usage_report.last_days(today), usage_report.one_day(day)
    month_rows = await usage_report.usage_by_model(ctx, account_id, month_period)
    day_rows = await usage_report.usage_by_model(ctx, account_id, day_period)
    return UsageView(
        today=today,
        day=day,
        previous_day=day - timedelta(days=1),
        next_day=None if day >= today else day + timedelta(days=1),
        daily_chart=_svg("chart-daily", "Spend per day by model, last 30 days (UTC)", daily),
        hourly_chart=_svg("chart-hourly", f"Spend per hour by model on {day.isoformat()} (UTC)", hourly),
        daily=daily,
        hourly=hourly,
        month=_table(month_rows, month_period, ""),
        one_day=_table(day_rows, day_period, f"?day={day.isoformat()}"),
    ), problem


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


async def usage_csv(ctx: Context, request: Request, account_id: str) -> Response:
    """The table by model as a CSV download: the chosen `day`, or else the last 30 days."""
    day_text = request.query_params.get("day")
    today = ctx.clock().date()
    if day_text:
        period = usage_report.one_day(usage_report.parse_day(day_text, today))
    else:
        period = usage_report.last_days(today)
    rows = await usage_report.usage_by_model(ctx, account_id, period)
    last = (period.end - timedelta(days=1)).date()
    name = f"usage-{_UNSAFE.sub('_', account_id)}-{period.start.date()}-{last}.csv"
    return Response(
        usage_report.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.get("/usage")
async def portal_usage(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    """The signed-in account's usage: charts, the table by model, CSV links."""
    ctx = context(request)
    account = await accounts.get_account(ctx, web.account_id)
    view, day_error = await usage_view(ctx, web.account_id, request.query_params.get("day"))
    return render(
        request,
        "portal/usage.html",
        status=400 if day_error else 200,
        title="Usage",
        account_name=account.name,
        usage=view,
        day_error=day_error,
        usage_url="/portal/usage",
    )


@router.get("/usage.csv")
async def portal_usage_csv(request: Request, web: WebSession = Depends(portal_session)) -> Response:
    return await usage_csv(context(request), request, web.account_id)
