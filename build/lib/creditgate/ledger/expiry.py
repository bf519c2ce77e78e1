"""How much of an expiring grant was left unused: a pure replay of an account's entries.

The rule ("spend draws from the soonest-expiring credit first"):

* Every positive entry (top-up, grant, positive adjustment or refund) is a lot. A lot first
  pays off any debt the account has run up (a balance below zero), and the rest stays in
  the lot. Only grants carry an `expires_at`; other lots never expire.
* Every negative entry (usage, negative adjustment or refund, other debits) draws from the
  open lots in order of expiry, soonest first (non-expiring lots last, older first on ties).
  What no lot covers becomes debt.
* A lot closes when its expiry time has passed: at the first entry, in ledger order, whose
  `created_at` is at or after `expires_at`, or at its own `expiry:<entry id>` entry if that
  comes first. Spend posted after that moment never draws from it.
* The unused remainder of a grant is what is left in its lot when it closes. The expiry
  entry debits exactly that (possibly 0), so the balance afterwards is what it would have
  been had the credit vanished at `expires_at`.

The replay depends only on the ledger, so every runner computes the same amount, and the
entry's ref (`expiry:<grant entry id>`) makes posting it idempotent.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

EXPIRY_REF_PREFIX = "expiry:"


class EntryLike(Protocol):
    id: int
    kind: str
    amount: int
    ref: str | None
    expires_at: datetime | None
    created_at: datetime


_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass
class _Lot:
    id: int
    remaining: int
    expires_at: datetime | None


def expiry_ref(grant_entry_id: int) -> str:
    return f"{EXPIRY_REF_PREFIX}{grant_entry_id}"


def unused_remainders(entries: Iterable[EntryLike], grant_ids: Iterable[int]) -> dict[int, int]:
    """Replay `entries` (one account, ascending id) and return, for each grant id asked for,
    the remainder at the moment it closed, or its current remainder if it has not closed yet
    (the caller only asks once `expires_at` has passed). Unknown ids are left out."""
    wanted = set(grant_ids)
    open_lots: dict[int, _Lot] = {}
    closing: list[tuple[datetime, int]] = []  # heap of open expiring lots by expiry
    drawing: list[tuple[datetime, int]] = []  # heap of lots that may still hold credit
    closed: dict[int, int] = {}
    debt = 0

    def close(lot_id: int) -> None:
        closed[lot_id] = open_lots.pop(lot_id).remaining

    for entry in entries:
        while closing and closing[0][0] <= entry.created_at:
            lot_id = heapq.heappop(closing)[1]
            if lot_id in open_lots:
                close(lot_id)
        if entry.kind == "expiry" and entry.ref and entry.ref.startswith(EXPIRY_REF_PREFIX):
            target = entry.ref[len(EXPIRY_REF_PREFIX) :]
            lot_id = int(target) if target.isdigit() else -1
            if lot_id in open_lots:
                close(lot_id)
            if lot_id in closed:
                continue  # the record of a closed lot, not spend
        if entry.amount > 0:
            paid = min(debt, entry.amount)
            debt -= paid
            open_lots[entry.id] = _Lot(entry.id, entry.amount - paid, entry.expires_at)
            heapq.heappush(drawing, (entry.expires_at or _NEVER, entry.id))
            if entry.expires_at is not None:
                heapq.heappush(closing, (entry.expires_at, entry.id))
        elif entry.amount < 0:
            need = -entry.amount
            while need and drawing:
                lot = open_lots.get(drawing[0][1])
                if lot is None or lot.remaining == 0:
                    heapq.heappop(drawing)
                    continue
                take = min(lot.remaining, need)
                lot.remaining -= take
                need -= take
            debt += need
    result = {gid: amount for gid, amount in closed.items() if gid in wanted}
    for gid in wanted - closed.keys():
        if gid in open_lots:
            result[gid] = open_lots[gid].remaining
    return result
