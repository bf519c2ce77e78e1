"""Enforcement: authorize (place a hold), settle, void and expire holds, and window spend.

Every function runs inside the caller's write transaction. Concurrency is settled by the
database: authorize locks the account row first (FOR UPDATE on PostgreSQL; SQLite's writer
holds the whole database), so the balance, `held`, the open holds and the window state it
reads cannot change until it commits. Settle, void and expiry lock the hold row first, then
the account (the same order everywhere, so they never deadlock with each other).

Rules:
- available credit = balance - held + (credit_limit when postpaid); a request needs
  max(amount, 1 unit) of it, so an account at or below zero is denied even for free calls.
- spend in a window = recorded spend in the window + every open hold; a request needs
  max(amount, 1 unit) of room under the limit.
- a grant is idempotent per (account, request_id): asking again returns the same hold. A denial
  is not stored: asking again re-evaluates, so a gateway may retry after `retry_after_ms`.
- the overrun of a settle is the part of the actual cost no open hold covered (all of it when
  the hold had already expired). Only an overrun can take available credit below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.errors import Conflict, CreditgateError, NotFound
from creditgate.ids import new_id
from creditgate.ledger import service as ledger
from creditgate.limits import postgres, windows
from creditgate.limits import repository as repo
from creditgate.limits.holds import Decision, Hold, HoldRequest, Row
from creditgate.limits.windows import PERIODS

_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class _Window:
    amount: int
    duration: str
    strategy: str
    start: datetime
    spend: int


def _ceil_ms(delta: timedelta) -> int:
    return max(0, -(-delta // _MS))


async def authorize(
    conn: AsyncConnection,
    *,
    account_id: str,
    request_id: str,
    amount: int,
    now: datetime,
    ttl_seconds: int,
    model: str | None = None,
    provider: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Decision:
    """Grant and hold `amount`, or deny with a reason. The caller has checked the principal.
    PostgreSQL runs the decision as one statement (function creditgate_authorize_many, the same
    rules), so the account row lock is held for the shortest time; SQLite runs it here."""
    if conn.dialect.name == "postgresql":
        req = HoldRequest(account_id, request_id, amount, now, ttl_seconds, model, provider, metadata)
        return await postgres.authorize(conn, req)
    account = await repo.lock_account(conn, account_id)
    if account is None:
        raise NotFound(f"no account {account_id!r}", field="account_id")
    existing = await repo.hold_by_request(conn, account_id, request_id)
    if existing is not None:
        return Decision(allowed=True, hold=Hold.from_row(existing), replayed=True)
    need = max(amount, 1)
    available = account.balance - account.held + (account.credit_limit if account.mode == "postpaid" else 0)
    window = await _current_window(conn, account_id, now)
    if available < need:
        return Decision(allowed=False, reason="insufficient_credit")
    if window is not None and window.spend + account.held + need > window.amount:
        retry = await _retry_after(conn, account_id, window, account.held, need, now)
        return Decision(allowed=False, reason="spending_limit", retry_after_ms=retry)
    remaining_limit = None if window is None else window.amount - window.spend - account.held - amount
    row = {
        "id": new_id("hold"),
        "account_id": account_id,
        "request_id": request_id,
        "amount": amount,
        "status": "open",
        "model": model,
        "provider": provider,
        "metadata": metadata,
        "remaining_credit": available - amount,
        "remaining_limit": remaining_limit,
        "created_at": now,
        "expires_at": now + timedelta(seconds=ttl_seconds),
        "closed_at": None,
        "captured": None,
        "overrun": 0,
        "late": False,
        "event_id": None,
    }
    await repo.insert_hold(conn, row)
    if amount:
        await repo.add_held(conn, account_id, amount)
    return Decision(allowed=True, hold=Hold.from_row(Row(row)))


async def _current_window(conn: AsyncConnection, account_id: str, now: datetime) -> _Window | None:
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
    return _Window(int(row.amount), row.duration, row.strategy, start, spend)


async def _retry_after(
    conn: AsyncConnection, account_id: str, window: _Window, held: int, need: int, now: datetime
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


async def record_spend(conn: AsyncConnection, spent: dict[str, int], now: datetime) -> None:
    """Count recorded usage (per account, units) in the windows, at `now`. The caller holds the
    accounts' row locks (ingest locks them before debiting)."""
    await repo.add_spend(conn, spent, windows.floor_minute(now))


def _visible(hold: Any, principal: Principal, action: str) -> None:
    if hold is None or not principal.may(action, hold.account_id):
        raise NotFound("no such hold", field="hold_id")


async def get_hold(conn: AsyncConnection, hold_id: str, principal: Principal) -> Hold:
    row = await repo.get_hold(conn, hold_id)
    if row is None or not (principal.may("gateway", row.account_id) or principal.may("read", row.account_id)):
        raise NotFound("no such hold", field="hold_id")
    return Hold.from_row(row)


async def lock_holds_for_settle(
    conn: AsyncConnection, hold_ids: list[str], principals: list[Principal]
) -> list[Hold | CreditgateError]:
    """Lock several holds (id order) for settling; per request its Hold, or NotFound when the
    caller may not see it, or Conflict when it was voided."""
    rows = {row.id: row for row in await repo.lock_holds(conn, hold_ids)}
    out: list[Hold | CreditgateError] = []
    for hold_id, principal in zip(hold_ids, principals, strict=True):
        row = rows.get(hold_id)
        if row is None or not principal.may("gateway", row.account_id):
            out.append(NotFound("no such hold", field="hold_id"))
        elif row.status == "voided":
            out.append(
                Conflict("the hold was voided; report the usage without a hold instead", field="hold_id")
            )
        else:
            out.append(Hold.from_row(row))
    return out


async def finish_settle(
    conn: AsyncConnection, hold: Hold, *, captured: int, event_id: str, now: datetime
) -> Hold:
    """Close a hold locked by lock_holds_for_settle whose usage was just recorded: release what it
    held and record the capture, any overrun, and whether it came after the expiry."""
    (closed,) = await finish_settle_many(conn, [(hold, captured, event_id)], now)
    return closed


async def finish_settle_many(
    conn: AsyncConnection, closes: list[tuple[Hold, int, str]], now: datetime
) -> list[Hold]:
    """finish_settle for several distinct locked holds: (hold, captured, event_id) each."""
    released: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    closed: list[Hold] = []
    for hold, captured, event_id in closes:
        covered = hold.amount if hold.status == "open" else 0
        values = {
            "status": "settled",
            "captured": captured,
            "overrun": max(0, captured - covered),
            "late": hold.status == "expired" or now > hold.expires_at,
            "event_id": event_id,
            "closed_at": now,
        }
        if hold.status == "open" and hold.amount:
            released[hold.account_id] = released.get(hold.account_id, 0) + hold.amount
        rows.append({"hid": hold.id, **values})
        closed.append(Hold(**{**hold.__dict__, **values}))
    await repo.add_held_many(conn, {a: -amount for a, amount in released.items()})
    await repo.close_holds(conn, rows)
    return closed


async def void(conn: AsyncConnection, hold_id: str, principal: Principal, now: datetime) -> Hold:
    """Release a hold without charging. Voiding a voided or expired hold changes nothing;
    voiding a settled one is a Conflict."""
    row = await repo.get_hold(conn, hold_id, lock=True)
    _visible(row, principal, "gateway")
    hold = Hold.from_row(row)
    if hold.status == "settled":
        raise Conflict("the hold was already settled", field="hold_id")
    if hold.status != "open":
        return hold
    if hold.amount:
        await repo.add_held(conn, hold.account_id, -hold.amount)
    values = {"status": "voided", "closed_at": now}
    await repo.update_hold(conn, hold.id, values)
    return Hold(**{**hold.__dict__, **values})


async def expire(conn: AsyncConnection, now: datetime, batch: int = 500) -> int:
    """Release up to `batch` open holds past their expiry. Safe with concurrent runners
    (PostgreSQL: FOR UPDATE SKIP LOCKED); returns how many it expired."""
    rows = await repo.lock_expired(conn, now, batch)
    if not rows:
        return 0
    released: dict[str, int] = {}
    for r in rows:
        released[r.account_id] = released.get(r.account_id, 0) + int(r.amount)
    await ledger.lock(conn, released)  # id order, like every other multi-account writer
    await repo.add_held_many(conn, {a: -amount for a, amount in released.items()})
    await repo.mark_expired(conn, [r.id for r in rows], now)
    return len(rows)


async def prune_spend(conn: AsyncConnection, now: datetime) -> int:
    """Delete spend buckets older than any window can reach."""
    return await repo.prune_buckets(conn, windows.floor_minute(now) - windows.RETENTION)


async def hold_totals(conn: AsyncConnection, account_id: str) -> tuple[int, int]:
    """(sum of open holds, sum of recorded overruns) for one account: for checks and tests."""
    return await repo.hold_totals(conn, account_id)


async def window_spend(conn: AsyncConnection, account_id: str, now: datetime) -> int | None:
    """Recorded spend in the account's current window (None without a limit)."""
    window = await _current_window(conn, account_id, now)
    return None if window is None else window.spend


async def authorize_many(conn: AsyncConnection, requests: list[HoldRequest]) -> list[Decision | NotFound]:
    """Decide many requests at once (one statement on PostgreSQL, accounts locked in id order).
    Returns, per request, its Decision or the NotFound for an unknown account."""
    if conn.dialect.name == "postgresql":
        return await postgres.authorize_many(conn, requests)
    results: list[Decision | NotFound] = []
    for req in requests:
        try:
            results.append(await authorize(conn, **req.__dict__))
        except NotFound as exc:
            results.append(exc)
    return results


__all__ = ["Decision", "Hold", "HoldRequest"]
