"""Enforcement: authorize (place a hold), settle, void and expire holds, and window spend.

Every function runs inside the caller's write transaction. Concurrency is settled by the
database: authorize locks the account row first (FOR UPDATE on PostgreSQL; SQLite's writer
holds the whole database), so the balance, `held`, the open holds and the window state it
reads cannot change until it commits. Settle, void and expiry lock the hold row first, then
the account (the same order everywhere, so they never deadlock with each other).

Rules:
- available credit = balance - held + the effective postpaid limit (limits.postpaid: the
  customer's soft limit capped by the operator's hard one; 0 on prepaid accounts); a request
  needs max(amount, 1 unit) of it, so an account at or below minus its limit is denied even
  for free calls.
- spend in a window = recorded spend in the window + every open hold; a request needs
  max(amount, 1 unit) of room under the limit.
- a grant is idempotent per (account, request_id): asking again returns the same hold. A denial
  is not stored: asking again re-evaluates, so a gateway may retry after `retry_after_ms`.
- the overrun of a settle is the part of the actual cost no open hold covered (all of it when
  the hold had already expired). Only an overrun can take available credit below zero.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.errors import Conflict, CreditgateError, NotFound
from creditgate.ledger import service as ledger
from creditgate.limits import decision, postgres, windows
from creditgate.limits import repository as repo
from creditgate.limits.holds import Decision, Hold, HoldRequest


@dataclass(frozen=True)
class HeldMismatch:
    """An account whose cached `held` is not the sum of its open holds."""

    account_id: str
    held: int
    open_holds: int


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
    Raises NotFound for an unknown account."""
    req = HoldRequest(account_id, request_id, amount, now, ttl_seconds, model, provider, metadata)
    (result,) = await authorize_many(conn, [req])
    if isinstance(result, NotFound):
        raise result
    return result


async def authorize_many(conn: AsyncConnection, requests: list[HoldRequest]) -> list[Decision | NotFound]:
    """Decide many requests at once. PostgreSQL runs the decision as one statement (function
    creditgate_authorize_many, authorize_many.sql: accounts locked in id order, each row lock
    held for the shortest time); SQLite runs its Python twin, limits.decision. Returns, per
    request, its Decision or the NotFound for an unknown account."""
    if conn.dialect.name == "postgresql":
        return await postgres.authorize_many(conn, requests)
    return await decision.authorize_many(conn, requests)


async def record_spend(conn: AsyncConnection, spent: dict[str, int], now: datetime) -> None:
    """Count recorded usage (per account, units) in the windows, at `now`. The caller holds the
    accounts' row locks (ingest locks them before debiting)."""
    await repo.add_spend(conn, spent, windows.floor_minute(now))


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
    rows = {hold.id: hold for hold in await repo.lock_holds(conn, hold_ids)}
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
            out.append(row)
    return out


async def finish_settle_many(
    conn: AsyncConnection, closes: list[tuple[Hold, int, str]], now: datetime
) -> list[Hold]:
    """Close several distinct holds locked by lock_holds_for_settle whose usage was just
    recorded, (hold, captured, event_id) each: release what each held and record the capture,
    any overrun, and whether it came after the expiry."""
    released: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    closed: list[Hold] = []
    for hold, captured, event_id in closes:
        covered = hold.amount if hold.status == "open" else 0
        settled = replace(
            hold,
            status="settled",
            captured=captured,
            overrun=max(0, captured - covered),
            late=hold.status == "expired" or now > hold.expires_at,
            event_id=event_id,
            closed_at=now,
        )
        if hold.status == "open" and hold.amount:
            released[hold.account_id] = released.get(hold.account_id, 0) + hold.amount
        rows.append(
            {
                "hid": settled.id,
                "aid": settled.account_id,
                "status": settled.status,
                "captured": settled.captured,
                "overrun": settled.overrun,
                "late": settled.late,
                "event_id": settled.event_id,
                "closed_at": settled.closed_at,
            }
        )
        closed.append(settled)
    await repo.close_holds(conn, rows, released)
    return closed


async def void(conn: AsyncConnection, hold_id: str, principal: Principal, now: datetime) -> Hold:
    """Release a hold without charging. Voiding a voided or expired hold changes nothing;
    voiding a settled one is a Conflict."""
    row = await repo.get_hold(conn, hold_id, lock=True)
    if row is None or not principal.may("gateway", row.account_id):
        raise NotFound("no such hold", field="hold_id")
    hold = Hold.from_row(row)
    if hold.status == "settled":
        raise Conflict("the hold was already settled", field="hold_id")
    if hold.status != "open":
        return hold
    if hold.amount:
        await repo.add_held(conn, hold.account_id, -hold.amount)
    await repo.update_hold(conn, hold.id, hold.account_id, {"status": "voided", "closed_at": now})
    return replace(hold, status="voided", closed_at=now)


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
    window = await decision.current_window(conn, account_id, now)
    return None if window is None else window.spend


async def held_mismatches(conn: AsyncConnection) -> list[HeldMismatch]:
    """Every account whose `held` differs from the sum of its open holds (reconcile's check)."""
    return [
        HeldMismatch(row.id, int(row.held), int(row.open_sum)) for row in await repo.held_mismatches(conn)
    ]


__all__ = ["Decision", "HeldMismatch", "Hold", "HoldRequest"]
