"""Auto top-up: queue exactly one off-session charge when a debit leaves the balance under the
threshold, and hand queued charges to the job that makes them.

Queueing happens inside the debit's own transaction (`after_debit`, called by the adapter
right after the ledger moved) and, as a safety net for every other way a balance can drop
(hold settlement, refunds, a config set while already low), in the `auto_topups` job
(`sweep`). Both hold the account row lock and claim the one slot with a guarded UPDATE
(`pending_topup_id IS NULL`); a partial unique index on `topups` (one auto top-up in status
`created` per account) backs it up. So hundreds of concurrent debits queue one top-up.

The charge itself is made by the job after that commit (`claim_charges` -> processor ->
`topups.record_charge`), off session, with the idempotency key `topup:<id>`; a job killed
between the charge and the record leaves the top-up `created` with an expiring lease, and the
next pass charges again under the same key, which the processor answers with the first
result. Amounts are cents; balances are ledger units.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup_repo as arepo
from creditgate.billing import autotopup_state, cards, topups
from creditgate.billing.invoices import month_bounds
from creditgate.billing.parties import Seller
from creditgate.billing.rows import AutoTopupRow, Topup
from creditgate.ids import new_id
from creditgate.ledger import service as ledger
from creditgate.money import UNITS_PER_CENT, to_cents_number
from creditgate.notify import service as notify

log = logging.getLogger("creditgate.billing.autotopup")

CHARGE_LEASE = timedelta(minutes=5)  # longer than a processor call with its retries
POLL_EVERY = timedelta(minutes=10)  # re-read of a top-up waiting for 3-D Secure
STALE_AFTER = timedelta(hours=23)  # processors keep idempotency keys for at least 24 h


class _Lost(Exception):
    """The slot was taken after all: undo this queue attempt."""


async def after_debit(
    conn: AsyncConnection, account_ids: Iterable[str], now: datetime, processor: str | None, seller: Seller
) -> list[str]:
    """The debit hook: call in the debit's transaction, after the ledger moved, with the
    accounts it debited (already locked by the debit). Returns the top-ups queued. Never
    raises: a failure here is logged and left to the job. A failed step rolls back to its
    savepoint and the debit still commits; a failure of the first query (no savepoint, to keep
    it off the hot path) aborts the debit's transaction on PostgreSQL, so the debit fails
    whole and the caller's retry is safe."""
    ids = sorted(set(account_ids))
    if not ids:
        return []
    try:
        rows = await arepo.below_threshold(conn, ids)
    except Exception:
        log.exception("auto top-up check after a debit failed; the auto_topups job will retry")
        return []
    queued = []
    for row in rows:
        found = await _step_safely(conn, row, now, processor, seller)
        if found is not None:
            queued.append(found)
    return queued


async def sweep(
    conn: AsyncConnection, now: datetime, processor: str, seller: Seller, *, limit: int = 100
) -> int:
    """The job's pass over every account: queue where a debit's hook did not (or could not),
    and clear balance.low once the balance is back. Returns how many top-ups were queued."""
    candidates = await arepo.sweep_candidates(conn, now, limit)
    if not candidates:
        return 0
    await ledger.lock(conn, candidates)  # id order, like every debit: no deadlock
    queued = 0
    for row in await arepo.configs_with_balance(conn, candidates):
        if row.balance >= row.threshold * UNITS_PER_CENT:
            if row.low_since is not None:
                await arepo.update_config(conn, row.account_id, {"low_since": None})
            continue
        if await _step_safely(conn, row, now, processor, seller) is not None:
            queued += 1
    return queued


def _may_queue(row: AutoTopupRow, now: datetime, processor: str | None) -> bool:
    waiting = row.next_attempt_at is not None and row.next_attempt_at > now
    return not (
        processor is None or row.pending_topup_id is not None or row.disabled_reason is not None or waiting
    )


async def _step_safely(
    conn: AsyncConnection, row: AutoTopupRow, now: datetime, processor: str | None, seller: Seller
) -> str | None:
    if row.low_since is not None and not _may_queue(row, now, processor):
        return None  # the common case under a low balance: nothing to write, no savepoint
    try:
        async with conn.begin_nested():
            return await _step(conn, row, now, processor, seller)
    except _Lost:
        return None
    except Exception:
        log.exception("could not queue an auto top-up for %s; the job will retry", row.account_id)
        return None


async def _step(
    conn: AsyncConnection, row: AutoTopupRow, now: datetime, processor: str | None, seller: Seller
) -> str | None:
    """One account under its threshold (locked): say balance.low once, then queue a top-up if
    nothing is in flight, it is not disabled, not backing off, and the cap allows it."""
    account_id = row.account_id
    if row.low_since is None:
        claimed = await arepo.update_config(conn, account_id, {"low_since": now}, unless_set="low_since")
        if claimed:
            payload = {
                "balance": to_cents_number(row.balance),
                "threshold": row.threshold,
                "auto_topup_amount": row.amount,
                "auto_topup_enabled": row.disabled_reason is None,
            }
            await notify.emit(conn, account_id, "balance.low", payload, now)
    if processor is None or not _may_queue(row, now, processor):
        return None
    start, end = month_bounds(now)
    amount = row.amount
    if row.monthly_cap is not None:
        spent = await arepo.auto_spent(conn, account_id, start, end)
        if spent + amount > row.monthly_cap:
            message = (
                f"monthly auto top-up cap reached: {spent} of {row.monthly_cap} cents charged this "
                f"month; auto top-up resumes on {end:%Y-%m-%d}"
            )
            await arepo.update_config(
                conn, account_id, {"next_attempt_at": end, "error": message, "updated_at": now}
            )
            return None
    profile = await cards.get_profile(conn, account_id)
    if profile is None or profile.processor != processor or profile.default_payment_method_id is None:
        reason = "no saved card to charge: save a card to turn auto top-up on"
        await autotopup_state.disable(conn, account_id, "no_card", reason, now)
        return None
    earlier = await arepo.unsettled_auto_topup(conn, account_id)
    if earlier is not None:  # the config was deleted and created again meanwhile: adopt it
        topup_id = earlier
    else:
        topup, _ = await topups.begin_topup(
            conn,
            account_id,
            amount=amount,
            payment_method_id=None,
            now=now,
            processor=processor,
            seller=seller,
            request_key=f"auto:{new_id('q')}",
            origin="auto",
        )
        topup_id = topup.id
    taken = await arepo.update_config(
        conn,
        account_id,
        {"pending_topup_id": topup_id, "updated_at": now},
        unless_set="pending_topup_id",
    )
    if not taken:
        raise _Lost
    return topup_id


async def claim_charges(conn: AsyncConnection, now: datetime, *, limit: int) -> list[Topup]:
    """Queued auto top-ups to charge now, each under a lease (commit before charging)."""
    ids = await arepo.claim_topups(conn, "created", now, now + CHARGE_LEASE, limit)
    return [await topups.get_topup(conn, topup_id) for topup_id in ids]


async def claim_polls(conn: AsyncConnection, now: datetime, *, limit: int) -> list[Topup]:
    """Auto top-ups waiting for 3-D Secure, due for a re-read of their payment."""
    ids = await arepo.claim_topups(conn, "pending", now, now + POLL_EVERY, limit)
    return [t for t in [await topups.get_topup(conn, i) for i in ids] if t.payment_id]


async def first_attempt_is_stale(conn: AsyncConnection, topup_id: str, now: datetime) -> bool:
    """True when the first charge attempt is so old that the processor may have forgotten its
    idempotency key: charging again could charge twice, so the job gives up instead (a late
    payment webhook still credits it)."""
    first = await arepo.first_attempt_at(conn, topup_id)
    return first is not None and now - first > STALE_AFTER


async def retry_later(conn: AsyncConnection, topup_id: str, at: datetime) -> None:
    """The processor did not answer: keep the top-up, try again (same key) from `at`."""
    await arepo.set_lease(conn, topup_id, at)
