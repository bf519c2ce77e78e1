"""Refunds of top-ups: give card money back and take the same credit out of the ledger.

Like a top-up, a refund we start is driven between two commits: `begin_refund` records the
intent (row status `created`), the adapter asks the processor with the idempotency key
`refund:<row id>`, and `record_refund` records the answer. A refund made elsewhere (the
Stripe dashboard) arrives as a `refund.succeeded` webhook and goes through `apply_refund`.

The ledger entry is a `refund` posting of minus the refunded cents with the ref
`refund:<processor refund id>`, so whichever path sees the refund first posts it, exactly
once. A refund may take the balance below zero (credit already spent) or under the auto
top-up threshold; the next auto top-up then follows the usual rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup_repo as arepo
from creditgate.billing import service, topups
from creditgate.billing.topups import Topup
from creditgate.errors import Conflict, NotFound
from creditgate.ids import new_id
from creditgate.ledger import service as ledger
from creditgate.money import cents
from creditgate.payments.gateway import RefundResult

_COUNTED = ("created", "pending", "succeeded")  # refunds that use up the refundable amount


@dataclass(frozen=True)
class Refund:
    id: str
    account_id: str
    topup_id: str
    amount: int  # cents
    status: str  # created | pending | succeeded | failed
    processor_refund_id: str | None
    reason: str | None
    failure_message: str | None
    created_at: datetime
    completed_at: datetime | None

    @property
    def idempotency_key(self) -> str:
        return f"refund:{self.id}"


def _refund(row: Any) -> Refund:
    return Refund(
        id=row.id,
        account_id=row.account_id,
        topup_id=row.topup_id,
        amount=int(row.amount),
        status=row.status,
        processor_refund_id=row.processor_refund_id,
        reason=row.reason,
        failure_message=row.failure_message,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )


async def _own_topup(conn: AsyncConnection, account_id: str, topup_id: str) -> Topup:
    topup = await topups.get_topup(conn, topup_id)
    if topup.account_id != account_id:
        raise NotFound(f"no top-up {topup_id!r}")
    return topup


async def list_refunds(conn: AsyncConnection, topup_id: str) -> list[Refund]:
    return [_refund(r) for r in await arepo.refunds_of(conn, topup_id)]


def refundable(topup: Topup, refunds: list[Refund]) -> int:
    """Cents of the top-up not yet refunded (or being refunded)."""
    if topup.status != "completed":
        return 0
    return topup.amount - sum(r.amount for r in refunds if r.status in _COUNTED)


async def begin_refund(
    conn: AsyncConnection,
    account_id: str,
    topup_id: str,
    *,
    amount: Any,
    reason: str | None,
    request_key: str | None,
    now: datetime,
) -> tuple[Refund | None, Topup]:
    """Record the intent to refund `amount` cents (None: all that is left). Returns the refund
    to drive, or None when there is nothing left to refund (a repeat of a full refund). An
    unfinished refund of the top-up is returned again so it is driven with its own key."""
    await ledger.lock(conn, [account_id])
    topup = await _own_topup(conn, account_id, topup_id)
    if request_key is not None:
        earlier = await arepo.refund_by_request_key(conn, account_id, request_key)
        if earlier is not None:
            if earlier.topup_id != topup_id or (amount is not None and int(earlier.amount) != amount):
                raise Conflict("Idempotency-Key was already used for another refund", field="Idempotency-Key")
            return _refund(earlier), topup
    if topup.status != "completed" or not topup.payment_id:
        raise Conflict(f"top-up {topup_id} is {topup.status}: only a completed top-up can be refunded")
    refunds = await list_refunds(conn, topup_id)
    unfinished = [r for r in refunds if r.status == "created"]
    if unfinished and (amount is None or unfinished[0].amount == amount):
        return unfinished[0], topup
    left = refundable(topup, refunds)
    if amount is None:
        if left == 0:
            return None, topup
        amount = left
    else:
        if left == 0:
            raise Conflict(f"top-up {topup_id} is already fully refunded", field="amount")
        amount = service.check_cents(amount, "amount", minimum=1, maximum=left)
    row = {
        "id": new_id("rf"),
        "account_id": account_id,
        "topup_id": topup_id,
        "amount": amount,
        "status": "created",
        "processor_refund_id": None,
        "reason": reason,
        "request_key": request_key,
        "failure_message": None,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
    }
    await arepo.insert_refund(conn, row)
    return _refund(await arepo.get_refund(conn, str(row["id"]))), topup


async def record_refund(conn: AsyncConnection, refund_id: str, result: RefundResult, now: datetime) -> Refund:
    """Record the processor's answer to a refund we started. Idempotent."""
    row = await arepo.get_refund(conn, refund_id)
    if row is None:
        raise NotFound(f"no refund {refund_id!r}")
    await ledger.lock(conn, [row.account_id])
    refund = _refund(await arepo.get_refund(conn, refund_id))
    if result.status in ("failed", "canceled"):
        await arepo.update_refund(
            conn,
            refund.id,
            ("created", "pending"),
            {
                "status": "failed",
                "failure_message": f"the processor answered {result.status}",
                "updated_at": now,
            },
        )
        return _refund(await arepo.get_refund(conn, refund_id))
    other = await arepo.refund_by_processor_id(conn, refund.account_id, result.refund_id)
    if other is not None and other.id != refund.id:
        # the webhook recorded it first, as a refund made elsewhere: keep one row for it
        await arepo.update_refund(
            conn,
            refund.id,
            ("created", "pending"),
            {"status": "failed", "failure_message": f"duplicate of {other.id}"},
        )
        return _refund(other)
    status = "succeeded" if result.status == "succeeded" else "pending"
    await arepo.update_refund(
        conn,
        refund.id,
        ("created", "pending"),
        {"status": status, "processor_refund_id": result.refund_id, "updated_at": now},
    )
    if status == "succeeded":
        await _post(conn, refund.account_id, refund.topup_id, result.refund_id, refund.amount, now)
        await arepo.update_refund(conn, refund.id, ("succeeded",), {"completed_at": now})
    return _refund(await arepo.get_refund(conn, refund_id))


async def apply_refund(
    conn: AsyncConnection, topup: Topup, processor_refund_id: str, amount: int, now: datetime
) -> Refund:
    """A processor says a refund of this top-up's payment succeeded (webhook). Completes the
    refund we started, or records one made elsewhere; posts the ledger entry once."""
    await ledger.lock(conn, [topup.account_id])
    row = await arepo.refund_by_processor_id(conn, topup.account_id, processor_refund_id)
    if row is None:
        # ours, still waiting for the processor's answer? (same top-up and amount, no id yet)
        waiting = [
            r
            for r in await arepo.refunds_of(conn, topup.id)
            if r.status == "created" and r.processor_refund_id is None and int(r.amount) == amount
        ]
        if waiting:
            row = waiting[0]
            await arepo.update_refund(
                conn, row.id, ("created",), {"processor_refund_id": processor_refund_id}
            )
        else:
            row_id = new_id("rf")
            await arepo.insert_refund(
                conn,
                {
                    "id": row_id,
                    "account_id": topup.account_id,
                    "topup_id": topup.id,
                    "amount": amount,
                    "status": "pending",
                    "processor_refund_id": processor_refund_id,
                    "reason": "refunded at the card processor",
                    "request_key": None,
                    "failure_message": None,
                    "created_at": now,
                    "updated_at": now,
                    "completed_at": None,
                },
            )
            row = await arepo.get_refund(conn, row_id)
    await arepo.update_refund(
        conn, row.id, ("created", "pending"), {"status": "succeeded", "updated_at": now, "completed_at": now}
    )
    await _post(conn, topup.account_id, topup.id, processor_refund_id, int(row.amount), now)
    return _refund(await arepo.get_refund(conn, row.id))


async def _post(
    conn: AsyncConnection,
    account_id: str,
    topup_id: str,
    processor_refund_id: str,
    amount: int,
    now: datetime,
) -> None:
    posting = ledger.Posting(
        account_id,
        "refund",
        -cents(amount),
        ref=f"refund:{processor_refund_id}",
        reason=f"refund of top-up {topup_id}",
    )
    await ledger.post(conn, [posting], now)


async def topup_with_refunds(
    conn: AsyncConnection, account_id: str, topup_id: str
) -> tuple[Topup, list[Refund]]:
    topup = await _own_topup(conn, account_id, topup_id)
    return topup, await list_refunds(conn, topup_id)


async def fail_refund(conn: AsyncConnection, refund_id: str, message: str, now: datetime) -> None:
    """The processor refused a refund we started (nothing was refunded)."""
    await arepo.update_refund(
        conn,
        refund_id,
        ("created",),
        {"status": "failed", "failure_message": message[:500], "updated_at": now},
    )
