"""Top-ups: an invoice plus a card charge that, once paid, credits the ledger exactly once.

The adapter drives three steps, and the card is charged only between two commits:

1. `begin_topup` (one transaction): lock the account, find a replay of the same request or
   create the invoice (status open) and the top-up row (status created).
2. Charge through the processor with idempotency key `topup:<id>`, outside any transaction.
3. `record_charge` (a second transaction): paid -> ledger posting ref `topup:<id>`, invoice
   paid, top-up completed; 3-D Secure -> pending with the client secret; declined -> failed
   and invoice uncollectible.

Every step is safe to repeat: the ledger skips a ref it already posted, status changes are
guarded UPDATEs, and the processor replays a charge made under the same key. A request that
is sent again (the Cloudflare SDK resends a POST after 409/429/5xx with no idempotency key)
finds the earlier top-up through its Idempotency-Key, or else, when the client says it is a
retry (`retry=True`: the SDK's `x-stainless-retry-count` > 0), through the dedupe window: the
same account, amount, card and origin within `DEDUPE_WINDOW`, unless that one failed. A
first attempt with neither is a new purchase, however like an earlier one it looks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup_state, cards, invoices
from creditgate.billing import topups_repo as repo
from creditgate.billing.parties import Seller
from creditgate.billing.rows import Topup
from creditgate.errors import Conflict, FailedPrecondition, NotFound, ValidationError
from creditgate.ids import new_id
from creditgate.ledger import service as ledger
from creditgate.money import cents
from creditgate.notify import service as notify
from creditgate.payments.gateway import ChargeResult

DEDUPE_WINDOW = timedelta(seconds=120)
ORIGINS = ("manual", "auto")
MIN_TOPUP_CENTS = 1000
MAX_TOPUP_CENTS = 100_000_000  # $1,000,000: far below int64 overflow once in ledger units
_LIVE = ("created", "pending", "completed")


def check_cents(value: Any, field: str, *, minimum: int, maximum: int = MAX_TOPUP_CENTS) -> int:
    """An integer number of cents within [minimum, maximum]; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be an integer number of cents", field=field)
    if not minimum <= value <= maximum:
        raise ValidationError(f"{field} must be between {minimum} and {maximum} cents", field=field)
    return value


async def begin_topup(
    conn: AsyncConnection,
    account_id: str,
    *,
    amount: Any,
    payment_method_id: str | None,
    now: datetime,
    processor: str,
    seller: Seller,
    request_key: str | None = None,
    origin: str = "manual",
    retry: bool = False,
) -> tuple[Topup, bool]:
    """Create the intent (invoice + top-up), or return the earlier top-up this request
    repeats (same Idempotency-Key, or a retry within the dedupe window). Returns (top-up,
    created)."""
    amount = check_cents(amount, "amount", minimum=MIN_TOPUP_CENTS)
    if origin not in ORIGINS:
        raise ValidationError("origin must be manual or auto", field="origin")
    if payment_method_id is not None and (not isinstance(payment_method_id, str) or not payment_method_id):
        raise ValidationError("payment_method_id must be a non-empty string", field="payment_method_id")
    if not (await ledger.lock(conn, [account_id])):
        raise NotFound(f"no account {account_id!r}")
    profile = await cards.get_profile(conn, account_id)
    method = payment_method_id or (profile.default_payment_method_id if profile else None)
    if profile is None or profile.processor != processor or not profile.customer_id or method is None:
        raise NotFound(
            "no card is saved on this account: save one first (creditgate cards add ACCOUNT_ID CARD)",
            field="payment_method_id",
        )
    card = await cards.get_card(conn, account_id, method)
    earlier = await _earlier(
        conn, account_id, amount, card.payment_method_id, origin, request_key, retry, now
    )
    if earlier is not None:
        return earlier, False
    invoice = await invoices.issue_invoice(
        conn,
        account_id,
        origin=origin,
        status="open",
        amount_due=amount,
        description="Prepaid credits top-up" if origin == "manual" else "Automatic credits top-up",
        now=now,
        seller=seller,
    )
    invoice_id, topup_id = invoice.id, new_id("tu")
    topup = Topup(
        id=topup_id,
        account_id=account_id,
        invoice_id=invoice_id,
        amount=amount,
        currency="usd",
        origin=origin,
        status="created",
        customer_id=profile.customer_id,
        payment_method_id=card.payment_method_id,
        payment_id=None,
        client_secret=None,
        failure_code=None,
        failure_message=None,
        created_at=now,
    )
    await repo.insert_topup(conn, topup, requested_method=payment_method_id, request_key=request_key)
    await notify.emit(
        conn,
        account_id,
        "invoice.finalized",
        {
            "invoice_id": invoice_id,
            "origin": origin,
            "amount_due": amount,
            "currency": "usd",
            "topup_id": topup_id,
        },
        now,
    )
    return topup, True


async def begin_or_get_pending(
    conn: AsyncConnection,
    account_id: str,
    *,
    amount: Any,
    now: datetime,
    processor: str,
    seller: Seller,
    request_key: str | None = None,
) -> tuple[Topup, bool]:
    """xAI's TopUpOrGetExistingPendingChange, under the account lock: the account's top-up
    still waiting for its charge if there is one (whatever its amount), else a new top-up of
    the default card (`begin_topup`). An Idempotency-Key used before replays its own top-up.
    Returns (top-up, created)."""
    amount = check_cents(amount, "amount", minimum=MIN_TOPUP_CENTS)
    if not (await ledger.lock(conn, [account_id])):
        raise NotFound(f"no account {account_id!r}")
    if request_key is None or await repo.topup_by_request_key(conn, account_id, request_key) is None:
        pending = await repo.oldest_unsettled_topup(conn, account_id)
        if pending is not None:
            return pending, False
        if await cards.default_card_id(conn, account_id, processor) is None:
            raise FailedPrecondition(
                "the account has no default payment method to charge: save a card first",
                field="payment_method_id",
            )
    return await begin_topup(
        conn,
        account_id,
        amount=amount,
        payment_method_id=None,
        now=now,
        processor=processor,
        seller=seller,
        request_key=request_key,
    )


async def _earlier(
    conn: AsyncConnection,
    account_id: str,
    amount: int,
    method: str,
    origin: str,
    request_key: str | None,
    retry: bool,
    now: datetime,
) -> Topup | None:
    if request_key is not None:
        earlier = await repo.topup_by_request_key(conn, account_id, request_key)
        if earlier is None:
            return None
        if earlier.amount != amount or earlier.payment_method_id != method or earlier.origin != origin:
            raise Conflict(
                "Idempotency-Key was already used with a different top-up", field="Idempotency-Key"
            )
        return earlier
    if not retry:
        return None
    return await repo.recent_identical_topup(
        conn,
        account_id,
        amount=amount,
        payment_method_id=method,
        origin=origin,
        since=now - DEDUPE_WINDOW,
        statuses=_LIVE,
    )


async def record_charge(conn: AsyncConnection, topup_id: str, result: ChargeResult, now: datetime) -> Topup:
    """Record the processor's answer: THE completion function of every path (the synchronous
    charge, a re-read, the auto top-up job and the webhooks). Idempotent: a completed top-up
    is returned unchanged, and a failed one changes only if the processor says the payment
    succeeded after all (money was taken, so it is credited, exactly once by its ledger ref)."""
    first = await repo.get_topup(conn, topup_id)
    if first is None:
        raise NotFound(f"no top-up {topup_id!r}")
    balance = (await ledger.lock(conn, [first.account_id]))[first.account_id]
    topup = await get_topup(conn, topup_id)  # as it is under the lock
    if topup.status == "completed" or (topup.status == "failed" and result.status != "succeeded"):
        return topup
    invoice = await invoices.get_invoice(conn, topup.invoice_id)
    if result.status == "succeeded":
        posting = ledger.Posting(
            topup.account_id,
            "topup",
            cents(topup.amount),
            ref=f"topup:{topup.id}",
            reason=f"card top-up, invoice {topup.invoice_id}",
        )
        posted = await ledger.post(conn, [posting], now, locked={topup.account_id: balance})
        balance = posted.balances[topup.account_id]
        await repo.update_topup(
            conn,
            topup.id,
            ("created", "pending", "failed"),
            {
                "status": "completed",
                "payment_id": result.payment_id or topup.payment_id,
                "client_secret": None,
                "updated_at": now,
                "completed_at": now,
            },
        )
        await invoices.record_charge_attempt(conn, invoice, "paid", now)
        await cards.mark_topped_up(conn, topup.account_id, now)
    elif result.status == "requires_action":
        await repo.update_topup(
            conn,
            topup.id,
            ("created", "pending"),
            {
                "status": "pending",
                "payment_id": result.payment_id or topup.payment_id,
                "client_secret": result.client_secret or topup.client_secret,
                "failure_code": result.failure_code,
                "failure_message": result.failure_message,
                "updated_at": now,
            },
        )
        await invoices.record_charge_attempt(conn, invoice, "pending", now)
    else:
        await repo.update_topup(
            conn,
            topup.id,
            ("created", "pending"),
            {
                "status": "failed",
                "payment_id": result.payment_id or topup.payment_id,
                "client_secret": None,
                "failure_code": result.failure_code or "payment_failed",
                "failure_message": result.failure_message or "The payment failed.",
                "updated_at": now,
            },
        )
        await invoices.record_charge_attempt(conn, invoice, "failed", now)
    settled = await get_topup(conn, topup_id)
    if settled.status != topup.status:
        await autotopup_state.topup_settled(conn, settled, topup.status, balance, now)
    return settled


async def get_topup(conn: AsyncConnection, topup_id: str) -> Topup:
    topup = await repo.get_topup(conn, topup_id)
    if topup is None:
        raise NotFound(f"no top-up {topup_id!r}")
    return topup


async def topup_by_payment(conn: AsyncConnection, payment_id: str) -> Topup | None:
    """The top-up a processor payment id belongs to (the first one, if several)."""
    return await repo.topup_by_payment(conn, payment_id)


async def list_topups(conn: AsyncConnection, account_id: str, *, limit: int) -> list[Topup]:
    """Newest first."""
    return await repo.list_topups(conn, account_id, limit)


async def topup_for_invoice(conn: AsyncConnection, account_id: str, invoice_id: str) -> Topup:
    """The account's top-up behind an invoice id (`payment_intent_id` on the Cloudflare wire).
    Another account's id is NotFound too."""
    topup = await repo.topup_by_invoice(conn, account_id, invoice_id)
    if topup is None:
        raise NotFound(f"no top-up with payment_intent_id {invoice_id!r}", field="payment_intent_id")
    return topup


async def onboarded_before(conn: AsyncConnection, topup: Topup) -> bool:
    """Whether the account had completed another top-up before this one (Cloudflare's
    `onboarding`: "whether the user was already onboarded")."""
    count = await repo.count_completed_topups(
        conn, topup.account_id, exclude=topup.id, created_before=topup.created_at
    )
    return count > 0
