"""Top-ups: charge an unsettled top-up and record the processor's answer.

`charge_topup` is the one function every path charges through: the Cloudflare `POST topup`,
the xAI `POST prepaid/top-up`, the admin `POST /topups` (all on session) and the auto top-up
job (off session). The card is charged only between two commits (see billing.topups): the
intent is committed first, the processor is called outside any transaction under the key
`topup:<id>`, and the answer is recorded in a second transaction, so a repeat never charges
twice.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from creditgate.billing import autotopup, balance_view, topups
from creditgate.billing import cards as billing_cards
from creditgate.billing.balance_view import BalanceChange
from creditgate.billing.rows import Card, Topup
from creditgate.errors import CreditgateError, PaymentFailed, ServiceUnavailable
from creditgate.observability import metrics
from creditgate.payments.gateway import ChargeResult
from creditgate.workflows.context import Context

log = logging.getLogger("creditgate.topup")
RETRY_UNANSWERED = timedelta(minutes=1)  # an unanswered off-session charge is tried again after this


@dataclass(frozen=True)
class TopupRequest:
    """A request to buy credit with a saved card. `amount` is in cents, checked by billing."""

    account_id: str
    amount: Any
    payment_method_id: Any = None
    request_key: str | None = None  # the Idempotency-Key: the same key is the same top-up
    retry: bool = False  # the client says this repeats an earlier attempt (x-stainless-retry-count > 0)


@dataclass(frozen=True)
class TopupReceipt:
    """A top-up after its charge: completed, or pending 3-D Secure."""

    topup: Topup
    card: Card
    onboarded: bool  # another top-up had completed before this one


async def charge_topup(ctx: Context, topup: Topup, *, off_session: bool) -> Topup:
    """Charge an unsettled top-up and record the answer in a new transaction.

    On session, a processor that cannot be reached is a 503 (nothing recorded; the same
    request resumes under the same key). Off session, the top-up stays queued and is tried
    again after RETRY_UNANSWERED; one whose first attempt is too old to retry safely fails
    as `outcome_unknown` (a late payment webhook still credits it)."""
    proc = ctx.require_processor()
    result: ChargeResult
    if off_session and await _first_attempt_is_stale(ctx, topup):
        result = ChargeResult(
            "",
            "failed",
            failure_code="outcome_unknown",
            failure_message="the first charge attempt never got an answer and is too old to retry safely; "
            "check the processor (a late payment webhook still credits it)",
        )
    else:
        try:
            result = await proc.charge(topup.charge_request(off_session=off_session))
        except Exception as exc:
            if off_session:
                metrics.AUTO_TOPUPS.labels("unanswered").inc()
                log.exception(
                    "auto top-up %s: the charge has no answer; retrying with the same key", topup.id
                )
                async with ctx.db.write() as conn:
                    await autotopup.retry_later(conn, topup.id, ctx.clock() + RETRY_UNANSWERED)
                return topup
            if isinstance(exc, CreditgateError):
                raise
            log.exception("charge for top-up %s failed to reach the processor", topup.id)
            raise ServiceUnavailable(
                f"the card processor could not be reached; top-up {topup.invoice_id} is not settled and "
                "will never be charged twice: check it with topup/status, or repeat the request with the "
                "same Idempotency-Key (the official SDKs' automatic retries are recognised as repeats too)"
            ) from exc
    if off_session:
        metrics.AUTO_TOPUPS.labels(result.status).inc()
        log.info("auto top-up %s charged: %s %s", topup.id, result.status, result.failure_code or "")
    async with ctx.db.write() as conn:
        return await topups.record_charge(conn, topup.id, result, ctx.clock())


async def _first_attempt_is_stale(ctx: Context, topup: Topup) -> bool:
    async with ctx.db.read() as conn:
        return await autotopup.first_attempt_is_stale(conn, topup.id, ctx.clock())


async def reread(ctx: Context, topup: Topup) -> Topup:
    """Re-read the payment of a top-up waiting for 3-D Secure and record a final answer.
    An unreachable processor leaves it as it was."""
    proc = ctx.require_processor()
    try:
        result = await proc.payment_status(str(topup.payment_id))
    except Exception:
        log.warning("could not re-read payment %s of top-up %s", topup.payment_id, topup.id, exc_info=True)
        return topup
    if result.status == "requires_action":
        return topup
    async with ctx.db.write() as conn:
        return await topups.record_charge(conn, topup.id, result, ctx.clock())


async def settle(ctx: Context, topup: Topup) -> Topup:
    """Bring an on-session top-up up to date: charge one that never reached the processor
    (same idempotency key, so at most one charge), or re-read one waiting for 3-D Secure."""
    if topup.status == "created":
        return await charge_topup(ctx, topup, off_session=False)
    if topup.status == "pending" and topup.payment_id:
        return await reread(ctx, topup)
    return topup


def raise_if_failed(topup: Topup) -> None:
    """A declined top-up is a 402 naming the decline code and the uncollectible invoice."""
    if topup.status == "failed":
        code = topup.failure_code or "payment_failed"
        raise PaymentFailed(
            f"{topup.failure_message or 'The payment failed.'} ({code}). Nothing was credited; "
            f"invoice {topup.invoice_id} is marked uncollectible.",
            decline_code=code,
        )


async def create_topup(ctx: Context, request: TopupRequest) -> TopupReceipt:
    """Buy credit on session: record the intent (or find the request it repeats), charge the
    card, record the answer. Declined -> PaymentFailed; processor unreachable -> 503."""
    proc = ctx.require_processor()
    async with ctx.db.write() as conn:
        topup, _created = await topups.begin_topup(
            conn,
            request.account_id,
            amount=request.amount,
            payment_method_id=request.payment_method_id,
            now=ctx.clock(),
            processor=proc.name,
            seller=ctx.seller,
            request_key=request.request_key,
            retry=request.retry,
        )
    topup = await settle(ctx, topup)
    raise_if_failed(topup)
    async with ctx.db.read() as conn:
        card = await billing_cards.get_card(conn, request.account_id, topup.payment_method_id)
        onboarded = await topups.onboarded_before(conn, topup)
    return TopupReceipt(topup, card, onboarded)


async def topup_status(ctx: Context, account_id: str, invoice_id: str) -> Topup:
    """The top-up behind an invoice, brought up to date (still pending while the processor
    cannot be reached). Declined -> PaymentFailed."""
    ctx.require_processor()
    async with ctx.db.read() as conn:
        topup = await topups.topup_for_invoice(conn, account_id, invoice_id)
    with contextlib.suppress(ServiceUnavailable):
        topup = await settle(ctx, topup)
    raise_if_failed(topup)
    return topup


async def run_auto_topups(ctx: Context, *, batch: int = 20, max_batches: int = 10) -> int:
    """One pass of auto top-up: queue those the debit hook missed, charge the queued ones off
    session (after the commit that queued them, under a lease), and re-read those waiting for
    3-D Secure. Returns how many top-ups were handled."""
    proc = ctx.require_processor()
    async with ctx.db.write() as conn:
        handled = await autotopup.sweep(conn, ctx.clock(), proc.name, ctx.seller)
    for _ in range(max_batches):
        async with ctx.db.write() as conn:
            claimed = await autotopup.claim_charges(conn, ctx.clock(), limit=batch)
        for topup in claimed:
            await charge_topup(ctx, topup, off_session=True)
        handled += len(claimed)
        if len(claimed) < batch:
            break
    async with ctx.db.write() as conn:
        waiting = await autotopup.claim_polls(conn, ctx.clock(), limit=batch)
    for topup in waiting:
        if (await reread(ctx, topup)).status != topup.status:
            handled += 1
    return handled


@dataclass(frozen=True)
class TopupChange:
    """A top-up as a change of the prepaid balance, and the processor that charges it."""

    topup: Topup
    change: BalanceChange
    processor: str


async def top_up_or_get_pending(
    ctx: Context, account_id: str, amount: Any, *, request_key: str | None = None
) -> TopupChange:
    """xAI's TopUpOrGetExistingPendingChange: while a top-up of the account waits for its
    charge, that one (a manual one is brought up to date: charged under its own key if it never
    reached the processor, re-read if waiting for 3-D Secure); otherwise buy `amount` cents
    with the default card. Declined -> PaymentFailed, nothing credited; processor unreachable
    -> 503 (the next call resumes the same top-up)."""
    proc = ctx.require_processor()
    async with ctx.db.write() as conn:
        topup, _created = await topups.begin_or_get_pending(
            conn,
            account_id,
            amount=amount,
            now=ctx.clock(),
            processor=proc.name,
            seller=ctx.seller,
            request_key=request_key,
        )
    if topup.origin == "manual":  # auto top-ups are the job's to charge, off session
        topup = await settle(ctx, topup)
        raise_if_failed(topup)
    async with ctx.db.read() as conn:
        change = await balance_view.topup_change(conn, account_id, topup.id)
    return TopupChange(topup, change, proc.name)
