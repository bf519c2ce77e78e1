"""Window arithmetic (pure), and windows, expiry and retry_after against a live server with an
injected clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from creditgate import jobs
from creditgate.clock import ManualClock
from creditgate.db import Database
from creditgate.limits import windows
from creditgate.money import cents
from tests import support
from tests.limits_support import account_state, authorize, set_limit, settle, with_db

T0 = datetime(2027, 3, 10, 12, 0, 30, tzinfo=UTC)  # a Wednesday


def test_fixed_window_boundaries() -> None:
    now = datetime(2027, 3, 10, 12, 0, 30, tzinfo=UTC)
    assert windows.window_start("daily", "fixed", now) == datetime(2027, 3, 10, tzinfo=UTC)
    assert windows.window_start("weekly", "fixed", now) == datetime(2027, 3, 8, tzinfo=UTC)  # Monday
    assert windows.window_start("monthly", "fixed", now) == datetime(2027, 3, 1, tzinfo=UTC)
    assert windows.fixed_window_end("daily", now) == datetime(2027, 3, 11, tzinfo=UTC)
    assert windows.fixed_window_end("weekly", now) == datetime(2027, 3, 15, tzinfo=UTC)
    assert windows.fixed_window_end("monthly", now) == datetime(2027, 4, 1, tzinfo=UTC)
    dec = datetime(2027, 12, 31, 23, 59, tzinfo=UTC)
    assert windows.fixed_window_end("monthly", dec) == datetime(2028, 1, 1, tzinfo=UTC)
    monday = datetime(2027, 3, 15, 0, 0, tzinfo=UTC)
    assert windows.window_start("weekly", "fixed", monday) == monday


def test_sliding_window_is_never_early() -> None:
    spent_at = datetime(2027, 3, 10, 12, 0, 30, tzinfo=UTC)
    bucket = windows.floor_minute(spent_at)
    for duration, period in windows.PERIODS.items():
        leaves = windows.leaves_sliding_window(duration, bucket)
        assert leaves == datetime(2027, 3, 10, 12, 1, tzinfo=UTC) + period
        assert spent_at + period <= leaves < spent_at + period + timedelta(minutes=1)
        # the bucket is inside the window just before it leaves, outside at that instant
        assert windows.window_start(duration, "sliding", leaves - timedelta(microseconds=1)) <= bucket
        assert windows.window_start(duration, "sliding", leaves) > bucket


@pytest.fixture
def clocked(fresh_database_url: str, tmp_path: Path) -> Iterator[tuple[support.LiveServer, ManualClock]]:
    clock = ManualClock(T0)
    settings = support.make_settings(fresh_database_url, tmp_path)
    with support.live_server(settings, clock=clock) as live:
        yield live, clock


def _run_job(server: support.LiveServer, clock: ManualClock, name: str) -> int:
    async def work(db: Database) -> int:
        return (await jobs.run_once(support.job_context(db, clock), [name]))[name]

    return with_db(server.settings.database_url, work)


def test_sliding_limit_frees_room_exactly_when_spend_leaves(
    clocked: tuple[support.LiveServer, ManualClock],
) -> None:
    server, clock = clocked
    account = support.create_account(server)
    support.grant(server, account, 1000)
    set_limit(server, account, 100, "daily", "sliding", now=clock())
    with server.admin() as c:
        first = authorize(c, account, "a", estimate="0.60")
        settle(c, first["hold_id"], cost="0.60")
        clock.advance(hours=6)  # second spend at 18:00:30
        second = authorize(c, account, "b", estimate="0.40")
        settle(c, second["hold_id"], cost="0.40")
        denied = authorize(c, account, "c", estimate="0.50")
        # room for 50 cents appears when the 60 cents recorded in minute 12:00 leave: 12:01 next day
        leaves = datetime(2027, 3, 11, 12, 1, tzinfo=UTC)
        assert denied == {
            "allowed": False,
            "reason": "spending_limit",
            "retry_after_ms": (leaves - clock()) // timedelta(milliseconds=1),
        }
        clock.now = leaves - timedelta(milliseconds=1)
        assert authorize(c, account, "d", estimate="0.50")["retry_after_ms"] == 1
        clock.now = leaves
        assert authorize(c, account, "e", estimate="0.50")["allowed"] is True
        assert authorize(c, account, "f", estimate="0.11")["reason"] == "spending_limit"
        # a request larger than the whole limit never fits: no retry_after
        assert authorize(c, account, "g", estimate="1.01") == {"allowed": False, "reason": "spending_limit"}


@pytest.mark.parametrize(
    ("duration", "start", "boundary"),
    [
        ("daily", datetime(2027, 3, 10, 23, 59, 59, tzinfo=UTC), datetime(2027, 3, 11, tzinfo=UTC)),
        ("weekly", datetime(2027, 3, 14, 23, 0, tzinfo=UTC), datetime(2027, 3, 15, tzinfo=UTC)),
        ("monthly", datetime(2027, 3, 31, 22, 0, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC)),
    ],
)
def test_fixed_limit_resets_at_the_calendar_boundary(
    clocked: tuple[support.LiveServer, ManualClock], duration: str, start: datetime, boundary: datetime
) -> None:
    server, clock = clocked
    clock.now = start
    account = support.create_account(server)
    support.grant(server, account, 1000)
    set_limit(server, account, 10, duration, "fixed", now=clock())
    with server.admin() as c:
        settle(c, authorize(c, account, "a", estimate="0.10")["hold_id"], cost="0.10")
        denied = authorize(c, account, "b", estimate="0.01")
        assert denied["retry_after_ms"] == (boundary - clock()) // timedelta(milliseconds=1)
        clock.now = boundary - timedelta(milliseconds=1)
        assert authorize(c, account, "c", estimate="0.01")["retry_after_ms"] == 1
        clock.now = boundary
        assert authorize(c, account, "d", estimate="0.10")["allowed"] is True


def test_open_holds_count_and_expire(clocked: tuple[support.LiveServer, ManualClock]) -> None:
    server, clock = clocked
    account = support.create_account(server)
    support.grant(server, account, 100)
    set_limit(server, account, 10, "daily", "fixed", now=clock())
    with server.admin() as c:
        hold = authorize(c, account, "a", estimate="0.08")
        assert hold["expires_at"] == (clock() + timedelta(seconds=600)).isoformat()
        blocked = authorize(c, account, "b", estimate="0.05")
        # only the open hold blocks: retry when it expires at the latest
        assert blocked == {"allowed": False, "reason": "spending_limit", "retry_after_ms": 600_000}
        clock.advance(seconds=599)
        assert _run_job(server, clock, "expire_holds") == 0
        clock.advance(seconds=1)
        assert _run_job(server, clock, "expire_holds") == 1
        assert _run_job(server, clock, "expire_holds") == 0
        assert account_state(server, account) == {"balance": cents(100), "held": 0, "open": 0, "overruns": 0}
        assert c.get(f"/v1/gateway/holds/{hold['hold_id']}").json()["status"] == "expired"
        assert authorize(c, account, "b", estimate="0.05")["allowed"] is True
        # the call happened after all: settling late charges it, and the uncovered cost is an overrun
        late = settle(c, hold["hold_id"], cost="0.07")
        assert late["late"] is True and late["captured_cents"] == 7 and late["overrun_cents"] == 7
        assert c.post(f"/v1/gateway/holds/{hold['hold_id']}/void").status_code == 409
    assert account_state(server, account) == {
        "balance": cents(93),
        "held": cents(5),
        "open": cents(5),
        "overruns": cents(7),
    }


def test_prune_keeps_what_windows_need(clocked: tuple[support.LiveServer, ManualClock]) -> None:
    server, clock = clocked
    account = support.create_account(server)
    support.grant(server, account, 1000)
    set_limit(server, account, 100, "monthly", "sliding", now=clock())
    with server.admin() as c:
        settle(c, authorize(c, account, "a", estimate="0.90")["hold_id"], cost="0.90")
        clock.advance(days=30)
        assert _run_job(server, clock, "prune_spend_buckets") == 0
        assert authorize(c, account, "b", estimate="0.20")["reason"] == "spending_limit"
        clock.advance(minutes=1)
        assert authorize(c, account, "c", estimate="0.20")["allowed"] is True
        clock.advance(days=5)
        assert _run_job(server, clock, "prune_spend_buckets") == 1
