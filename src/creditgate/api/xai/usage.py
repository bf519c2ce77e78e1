"""POST /v1/billing/teams/{team_id}/usage (contract 4.11): usage analytics as dense time
series, `usd` in US dollars as doubles, bucketed in the request's IANA time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.state import services
from creditgate.api.xai.analytics import (
    AnalyticsRequest,
    AnalyticsResponse,
    AnalyzeBillingItemsRequest,
    DataPoint,
    TimeSeries,
    TimeUnit,
)
from creditgate.api.xai.openapi import USAGE_BODY, doc
from creditgate.api.xai.wire import TEAMS, read_message, render, team_access
from creditgate.errors import ValidationError
from creditgate.metering.analytics import Filter, Query, Result
from creditgate.money import UNITS_PER_USD
from creditgate.workflows import analytics

router = APIRouter()
UNITS = {
    TimeUnit.TIME_UNIT_MONTH: "month",
    TimeUnit.TIME_UNIT_CALENDAR_WEEK: "week",
    TimeUnit.TIME_UNIT_DAY: "day",
    TimeUnit.TIME_UNIT_HOUR: "hour",
    TimeUnit.TIME_UNIT_NONE: "none",
}
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)(Z|[+-]\d{2}:\d{2})?")
_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*")
_OPERATORS = "<>!~"
FIRST_YEAR, LAST_YEAR = 1970, 2200  # usage is recorded between 2000 and 2100


def zone_of(name: str) -> ZoneInfo:
    """An IANA zone; an empty name is UTC."""
    if not name:
        return ZoneInfo("UTC")
    if _ZONE.fullmatch(name) and len(name) <= 64:
        try:
            return ZoneInfo(name)
        except (ValueError, OSError, ZoneInfoNotFoundError):
            pass
    raise ValidationError(
        f"unknown time zone {name!r}; use an IANA name such as Etc/GMT", field="timeRange.timezone"
    )


def local_time(text: str, zone: ZoneInfo, field: str) -> datetime:
    """ "YYYY-MM-DD HH:MM:SS" in `zone` (a `T` and fraction are read too; an explicit offset wins)."""
    match = _TIME.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError(text)
        moment = datetime.fromisoformat(f"{match[1]}T{match[2]}{(match[3] or '').replace('Z', '+00:00')}")
    except ValueError:
        raise ValidationError(f"{field} must be YYYY-MM-DD HH:MM:SS", field=field) from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValidationError(f"{field} must be between {FIRST_YEAR} and {LAST_YEAR}", field=field)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def parse_filter(text: str) -> Filter:
    """`(NOT) field:value`; only equality (a bare value, or `=value`) is supported."""
    body = text.strip()
    negate = body[:4].upper() == "NOT "
    if negate:
        body = body[4:].strip()
    name, colon, value = body.partition(":")
    name = name.strip()
    if not colon or not name:
        raise ValidationError(f"filter {text!r} must look like field:value", field="filters")
    if value and value[0] in _OPERATORS:
        raise ValidationError(f"filter {text!r}: only equality filters are supported", field="filters")
    return Filter(name, value.removeprefix("="), negate)


def query_of(request: AnalyticsRequest) -> Query:
    if request.time_range is None:
        raise ValidationError("timeRange is required", field="analyticsRequest.timeRange")
    unit = UNITS.get(request.time_unit)
    if unit is None:
        raise ValidationError(
            f"timeUnit {request.time_unit.name} is not supported; "
            "use MONTH, CALENDAR_WEEK, DAY, HOUR or NONE",
            field="analyticsRequest.timeUnit",
        )
    zone = zone_of(request.time_range.timezone)
    return Query(
        start=local_time(request.time_range.start_time, zone, "timeRange.startTime"),
        end=local_time(request.time_range.end_time, zone, "timeRange.endTime"),
        zone=zone,
        unit=unit,
        measures=tuple(
            (v.name, v.aggregation.name.removeprefix("AGGREGATION_").lower()) for v in request.values
        ),
        group_by=tuple(request.group_by),
        filters=tuple(parse_filter(text) for text in request.filters),
    )


def response(result: Result, measures: tuple[tuple[str, str], ...]) -> AnalyticsResponse:
    money = [name == "usd" and aggregation == "sum" for name, aggregation in measures]
    series = []
    for item in result.series:
        points = [
            DataPoint(
                start, [v / UNITS_PER_USD if m else float(v) for v, m in zip(values, money, strict=True)]
            )
            for start, values in zip(result.starts, item.points, strict=True)
        ]
        series.append(TimeSeries(list(item.group), list(item.group), points))
    return AnalyticsResponse(series, result.limit_reached)


@router.post(TEAMS + "/usage", **doc("Usage analytics", body=USAGE_BODY, response=AnalyticsResponse))
async def usage(request: Request, team_id: str) -> Response:
    await team_access(request, team_id, "read")
    body: AnalyzeBillingItemsRequest = await read_message(request, AnalyzeBillingItemsRequest)
    if body.analytics_request is None:
        raise ValidationError("analyticsRequest is required", field="analyticsRequest")
    query = query_of(body.analytics_request)
    result = await analytics.analyze_usage(services(request), team_id, query)
    return render(response(result, query.measures))
