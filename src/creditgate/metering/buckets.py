"""Calendar buckets in a time zone: the UTC instants where each hour, day, ISO week or month
begins in the zone, over a [start, end) range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from creditgate.errors import ValidationError

UNITS = ("hour", "day", "week", "month", "none")
HOUR = timedelta(hours=1)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _next_start(day: date, unit: str) -> date:
    if unit == "day":
        return day + timedelta(days=1)
    if unit == "week":
        return day + timedelta(days=7)
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def bucket_starts(start: datetime, end: datetime, zone: ZoneInfo, unit: str, limit: int) -> list[datetime]:
    """The UTC start of every bucket that overlaps [start, end), the first one at or before
    `start`. More than `limit` buckets is a ValidationError."""
    if unit not in UNITS:
        raise ValidationError(f"unsupported time unit {unit!r}", field="timeUnit")
    if unit == "none":
        return [start]
    starts: list[datetime] = []
    if unit == "hour":
        local = start.astimezone(zone)
        moment = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        while moment < end:
            starts.append(moment)
            moment += HOUR
            if len(starts) > limit:
                break
    else:
        day = start.astimezone(zone).date()
        if unit == "week":
            day -= timedelta(days=day.weekday())
        elif unit == "month":
            day = day.replace(day=1)
        moment = _midnight(day, zone)
        while moment < end:
            starts.append(moment)
            day = _next_start(day, unit)
            moment = _midnight(day, zone)
            if len(starts) > limit:
                break
    if len(starts) > limit:
        raise ValidationError(
            f"the range has more than {limit} buckets; use a larger time unit", field="timeRange"
        )
    return starts
