"""prod.clickhouse_analytics messages (xai/shared/analytics/analytics.proto) for POST usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import ClassVar

from creditgate.api.xai.protojson import BOOL, DOUBLE, ENUM, MESSAGE, STRING, TIMESTAMP, F


class TimeUnit(IntEnum):
    TIME_UNIT_INVALID = 0
    TIME_UNIT_MONTH = 1
    TIME_UNIT_CALENDAR_WEEK = 2
    TIME_UNIT_DAY = 3
    TIME_UNIT_HOUR = 4
    TIME_UNIT_QUARTER_HOUR = 5
    TIME_UNIT_MINUTE = 6
    TIME_UNIT_SECOND = 7
    TIME_UNIT_NONE = 8


class Aggregation(IntEnum):
    AGGREGATION_NONE = 0
    AGGREGATION_SUM = 1
    AGGREGATION_AVG = 2
    AGGREGATION_VAR = 3
    AGGREGATION_STD = 4
    AGGREGATION_MIN = 5
    AGGREGATION_MAX = 6
    AGGREGATION_P50 = 7
    AGGREGATION_P90 = 8
    AGGREGATION_P99 = 9
    AGGREGATION_P999 = 10
    AGGREGATION_COUNT = 11
    AGGREGATION_COUNT_DISTINCT = 12


@dataclass
class TimeRange:
    start_time: str = ""
    end_time: str = ""
    timezone: str = ""
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("start_time", STRING),
        F("end_time", STRING),
        F("timezone", STRING),
    )


@dataclass
class Value:
    name: str = ""
    aggregation: Aggregation = Aggregation.AGGREGATION_NONE
    FIELDS: ClassVar[tuple[F, ...]] = (F("name", STRING), F("aggregation", ENUM, Aggregation))


@dataclass
class AnalyticsRequest:
    time_range: TimeRange | None = None
    time_unit: TimeUnit = TimeUnit.TIME_UNIT_INVALID
    values: list[Value] = field(default_factory=list)
    group_by: list[str] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("time_range", MESSAGE, TimeRange),
        F("time_unit", ENUM, TimeUnit),
        F("values", MESSAGE, Value, repeated=True),
        F("group_by", STRING, repeated=True),
        F("filters", STRING, repeated=True),
    )


@dataclass
class AnalyzeBillingItemsRequest:
    analytics_request: AnalyticsRequest | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (F("analytics_request", MESSAGE, AnalyticsRequest),)


@dataclass
class DataPoint:
    timestamp: datetime | None = None
    values: list[float] = field(default_factory=list)
    FIELDS: ClassVar[tuple[F, ...]] = (F("timestamp", TIMESTAMP), F("values", DOUBLE, repeated=True))


@dataclass
class TimeSeries:
    group: list[str] = field(default_factory=list)
    group_labels: list[str] = field(default_factory=list)
    data_points: list[DataPoint] = field(default_factory=list)
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("group", STRING, repeated=True),
        F("group_labels", STRING, repeated=True),
        F("data_points", MESSAGE, DataPoint, repeated=True),
    )


@dataclass
class AnalyticsResponse:
    time_series: list[TimeSeries] = field(default_factory=list)
    limit_reached: bool = False
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("time_series", MESSAGE, TimeSeries, repeated=True),
        F("limit_reached", BOOL),
    )
