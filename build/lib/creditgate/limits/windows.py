"""Window arithmetic for spending limits. Pure functions of (limit, now); all times UTC.

Spend is recorded in one-minute buckets (a bucket holds the spend recorded during
[bucket_start, bucket_start + 1 min)).

- `fixed`: calendar windows. A day starts at 00:00, a week on Monday 00:00, a month on the
  1st at 00:00. The window holds every bucket from its start on and resets at the next boundary.
- `sliding`: the trailing 24 h, 7 d or 30 d. At time `now` the window holds the buckets that
  start at or after `floor_minute(now) - period`, so spend recorded at t leaves the window at
  `floor_minute(t) + period + 1 min`: never early, at most one minute late.
"""

from __future__ import annotations

from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)
PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7), "monthly": timedelta(days=30)}
# Buckets older than this are never read by any window (30 d sliding + slack) and may be pruned.
RETENTION = timedelta(days=35)


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def window_start(duration: str, strategy: str, now: datetime) -> datetime:
    """The first bucket_start inside the window in force at `now`."""
    if strategy == "sliding":
        return floor_minute(now) - PERIODS[duration]
    day = _midnight(now)
    if duration == "daily":
        return day
    if duration == "weekly":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def fixed_window_end(duration: str, now: datetime) -> datetime:
    """When the calendar window in force at `now` resets."""
    start = window_start(duration, "fixed", now)
    if duration == "daily":
        return start + timedelta(days=1)
    if duration == "weekly":
        return start + timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def leaves_sliding_window(duration: str, bucket_start: datetime) -> datetime:
    """The moment spend recorded in `bucket_start` stops counting in a sliding window."""
    return bucket_start + PERIODS[duration] + MINUTE
