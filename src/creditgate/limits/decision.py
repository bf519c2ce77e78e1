"""The hold decision in Python: what SQLite runs, twin of authorize_many.sql (PostgreSQL's).

The two are kept equal by tests/test_hold_twins.py, which plays both on the same random
sequences of authorize, settle, void and expire and compares every answer and `held`. A rule
changed here must be changed in authorize_many.sql too (and a migration added for it).

The rules are in limits.service's docstring. This module works on either backend (it locks the
account row FOR UPDATE on PostgreSQL), so the twin test can run it next to the SQL function on
the same kind of database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.errors import NotFound
from creditgate.ids import new_id
from creditgate.limits import repository as repo
from creditgate.limits import windows
from creditgate.limits.holds import Decision, Hold, HoldRequest
from creditgate.limits.postpaid import effective_limit
from creditgate.limits.windows import PERIODS

_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Window:
    """The account's limit and the recorded spend of the window in force."""

    amount: int
    duration: str
    strategy: str
    start: datetime
    spend: int


def _ceil_ms(delta: timedelta) -> int:
    return max(0, -(-delta // _MS))


async def authorize(conn: AsyncConnection, req: HoldRequest) -> Decision:
    """Grant and hold `req.amount`, or deny with a reason; NotFound for an unknown account."""
    account = await repo.lock_account(conn, req.account_id)
    if account is None:
        raise NotFound(f"no account {req.account_id!r}", field="account_id")
    existing = await repo.hold_by_request(conn, req.account_id, req.request_id)
    if existing is not None:
        return Decision(allowed=True, hold=Hold.from_row(existing), replayed=True)
    need = max(req.amount, 1)
    held = int(account.held)
    window = await current_window(conn, req.account_id, req.now)
    # usage stored but not applied yet counts as spent already (metering/applier.py)
    pending, recent = await repo.pending_usage(conn, req.account_id, None if window is None else window.start)
    if window is not None:
        window = replace(window, spend=window.spend + recent)
    soft = None if account.postpaid_soft_limit is None else int(account.postpaid_soft_limit)
    allowance = effective_limit(int(account.postpaid_hard_limit), soft)
    available = int(account.balance) - pending - held + allowance
    if available < need:
        return Decision(allowed=False, reason="insufficient_credit")
    if window is not None and window.spend + held + need > window.amount:
        retry = await _retry_after(conn, req.account_id, window, held, need, req.now)
        return Decision(allowed=False, reason="spending_limit", retry_after_ms=retry)
    hold = Hold(
        id=new_id("hold"),
        account_id=req.account_id,
        request_id=req.request_id,
        amount=req.amount,
        status="open",
        created_at=req.now,
        expires_at=req.now + timedelta(seconds=req.ttl_seconds),
        remaining_credit=available - req.amount,
        remaining_limit=None if window is None else window.amount - window.spend - held - req.amount,
        model=req.model,
        provider=req.provider,
    )
    await repo.insert_hold(conn, hold, req.metadata)
    if req.amount:
        await repo.add_held(conn, req.account_id, req.amount)
    return Decision(allowed=True, hold=hold)


async def authorize_many(conn: AsyncConnection, requests: list[HoldRequest]) -> list[Decision | NotFound]:
    """`authorize` for each request in turn; per request its Decision or NotFound."""
    results: list[Decision | NotFound] = []
    for req in requests:
        try:
            results.append(await authorize(conn, req))
        except NotFound as exc:
            results.append(exc)
    return results


async def current_window(conn: AsyncConnection, account_id: str, now: datetime) -> Window | None:
    """The account's limit with the recorded spend of the window in force at `now`, bringing
    the running sum up to date (subtracting buckets that slid out, or recomputing)."""
    row = await repo.limit_with_state(conn, account_id)
    if row is None:
        return None
    start = windows.window_start(row.duration, row.strategy, now)
    same_limit = row.state_duration == row.duration and row.state_strategy == row.strategy
    if same_limit and row.window_start == start:
        spend = int(row.window_spend)
    elif (
        same_limit
        and row.strategy == "sliding"
        and row.window_start < start < row.window_start + PERIODS[row.duration]
    ):
        spend = int(row.window_spend) - await repo.sum_buckets(conn, account_id, row.window_start, start)
    else:
        spend = await repo.sum_buckets(conn, account_id, start)
    if not (same_limit and row.window_start == start):
        await repo.put_state(conn, account_id, row.duration, row.strategy, start, spend)
    return Window(int(row.amount), row.duration, row.strategy, start, spend)


async def _retry_after(
    conn: AsyncConnection, account_id: str, window: Window, held: int, need: int, now: datetime
) -> int | None:
    """Milliseconds until the window could have room for `need`, assuming no new spend and the
    open holds staying; None when it never will (the request alone exceeds the limit)."""
    if need > window.amount:
        return None
    allowed_spend = window.amount - held - need
    if allowed_spend < 0:  # open holds alone block it: they close by their expiry at the latest
        expiry = await repo.earliest_open_expiry(conn, account_id)
        return None if expiry is None else _ceil_ms(expiry - now)
    if window.strategy == "fixed":
        return _ceil_ms(windows.fixed_window_end(window.duration, now) - now)
    bucket = await repo.first_bucket_reaching(conn, account_id, window.start, window.spend - allowed_spend)
    if bucket is None:
        return None
    return _ceil_ms(windows.leaves_sliding_window(window.duration, bucket) - now)
