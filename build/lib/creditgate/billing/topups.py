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
finds the earlier top-up through its Idempotency-Key, or else through the dedupe window:
the same account, amount, card and origin within `DEDUPE_WINDOW`, unless that one failed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup_repo as arepo
from creditgate.billing import autotopup_state, service
from creditgate.billing import repository as repo
from creditgate.errors import Conflict, NotFound, ValidationError
from creditgate.ids import new_id, new_secret
from creditgate.ledger import service as ledger
from creditgate.money import cents
from creditgate.notify import service as notify
from creditgate.payments.gateway import ChargeRequest, ChargeResult

DEDUPE_WINDOW = timedelta(seconds=120)
ORIGINS = ("manual", "auto")
_LIVE = ("created", "pending", "completed")


@dataclass(frozen=True)
class Topup:
    id: str
    account_id: str
    invoice_id: str
    amount: int  # cents
    currency: str
    origin: str
    status: str  # created | pending | completed | failed
    customer_id: str
    payment_method_id: str
    payment_id: str | None
    client_secret: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: datetime

    def charge_request(self, *, off_session: bool) -> ChargeRequest:
        """The processor call for this top-up; its idempotency key is derived from our id."""
        return ChargeRequest(
            customer_id=self.customer_id,
            payment_method_id=self.payment_method_id,
            amount_cents=self.amount,
            currency=self.currency,
            off_session=off_session,
            idempotency_key=f"topup:{self.id}",
            metadata={"account_id": self.account_id, "topup_id": self.id, "invoice_id": self.invoice_id},
            description=f"creditgate credit top-up {self.invoice_id}",
        )


def _topup(row: Any) -> Topup:
    return Topup(
        id=row.id,
        account_id=row.account_id,
        invoice_id=row.invoice_id,
        amount=int(row.amount),
        currency=row.currency,
        origin=row.origin,
        status=row.status,
        customer_id=row.customer_id,
        payment_method_id=row.payment_method_id,
        payment_id=row.payment_id,
        client_secret=row.client_secret,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
        created_at=row.created_at,
    )


def invoice_number(account_id: str, seq: int) -> str:
    """Stripe-style `PREFIX-0001`: a stable per-account prefix and a per-account sequence."""
    prefix = hashlib.sha256(account_id.encode()).hexdigest()[:8].upper()
    return f"{prefix}-{seq:04d}"


async def begin_topup(
    conn: AsyncConnection,
    account_id: str,
    *,
    amount: Any,
    payment_method_id: str | None,
    now: datetime,
    processor: str,
    request_key: str | None = None,
    origin: str = "manual",
) -> tuple[Topup, bool]:
    """Create the intent (invoice + top-up), or return the earlier top-up this request
    repeats. Returns (top-up, created)."""
    amount = service.check_cents(amount, "amount", minimum=service.MIN_TOPUP_CENTS)
    if origin not in ORIGINS:
        raise ValidationError("origin must be manual or auto", field="origin")
    if payment_method_id is not None and (not isinstance(payment_method_id, str) or not payment_method_id):
        raise ValidationError("payment_method_id must be a non-empty string", field="payment_method_id")
    if not (await ledger.lock(conn, [account_id])):
        raise NotFound(f"no account {account_id!r}")
    profile = await service.get_profile(conn, account_id)
    method = payment_method_id or (profile.default_payment_method_id if profile else None)
    if profile is None or profile.processor != processor or not profile.customer_id or method is None:
        raise NotFound(
            "no card is saved on this account: save one first (creditgate cards add ACCOUNT_ID CARD)",
            field="payment_method_id",
        )
    card = await service.get_card(conn, account_id, method)
    earlier = await _earlier(conn, account_id, amount, card.payment_method_id, origin, request_key, now)
    if earlier is not None:
        return earlier, False
    seq = await repo.count_invoices(conn, account_id) + 1
    invoice_id, topup_id = new_id("in"), new_id("tu")
    await repo.insert_invoice(
        conn,
        {
            "id": invoice_id,
            "account_id": account_id,
            "number": invoice_number(account_id, seq),
            "status": "open",
            "origin": origin,
            "currency": "usd",
            "amount_due": amount,
            "amount_paid": 0,
            "description": "Prepaid credits top-up" if origin == "manual" else "Automatic credits top-up",
            "attempt_count": 0,
            "pdf_key": new_secret(24),
            "created_at": now,
            "paid_at": None,
        },
    )
    row = {
        "id": topup_id,
        "account_id": account_id,
        "invoice_id": invoice_id,
        "amount": amount,
        "currency": "usd",
        "origin": origin,
        "status": "created",
        "customer_id": profile.customer_id,
        "payment_method_id": card.payment_method_id,
        "requested_method": payment_method_id,
        "request_key": request_key,
        "payment_id": None,
        "client_secret": None,
        "failure_code": None,
        "failure_message": None,
        "created_at": now,
        "updated_at": now,
        "completed_at": None,
    }
    await repo.insert_topup(conn, row)
    topup = _topup(_Row(row))
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


async def _earlier(
    conn: AsyncConnection,
    account_id: str,
    amount: int,
    method: str,
    origin: str,
    request_key: str | None,
    now: datetime,
) -> Topup | None:
    if request_key is not None:
        row = await repo.topup_by_request_key(conn, account_id, request_key)
        if row is None:
            return None
        if int(row.amount) != amount or row.payment_method_id != method or row.origin != origin:
            raise Conflict(
                "Idempotency-Key was already used with a different top-up", field="Idempotency-Key"
            )
        return _topup(row)
    row = await repo.recent_identical_topup(
        conn,
        account_id,
        amount=amount,
        payment_method_id=method,
        origin=origin,
        since=now - DEDUPE_WINDOW,
        statuses=_LIVE,
    )
    return None if row is None else _topup(row)


async def record_charge(conn: AsyncConnection, topup_id: str, result: ChargeResult, now: datetime) -> Topup:
    """Record the processor's answer: THE completion function of every path (the synchronous
    charge, a re-read, the auto top-up job and the webhooks). Idempotent: a completed top-up
    is returned unchanged, and a failed one changes only if the processor says the payment
    succeeded after all (money was taken, so it is credited, exactly once by its ledger ref)."""
    first = await repo.get_topup(conn, topup_id)
    if first is None:
        raise NotFound(f"no top-up {topup_id!r}")
    balances = await ledger.lock(conn, [first.account_id])
    topup = _topup(await repo.get_topup(conn, topup_id))
    if topup.status == "completed" or (topup.status == "failed" and result.status != "succeeded"):
        return topup
    invoice = await repo.get_invoice(conn, topup.invoice_id)
    attempts = max(int(invoice.attempt_count), 1)
    if result.status == "succeeded":
        posting = ledger.Posting(
            topup.account_id,
            "topup",
            cents(topup.amount),
            ref=f"topup:{topup.id}",
            reason=f"card top-up, invoice {topup.invoice_id}",
        )
        await ledger.post(conn, [posting], now, locked=balances)
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
        await repo.update_invoice(
            conn,
            topup.invoice_id,
            {"status": "paid", "amount_paid": topup.amount, "paid_at": now, "attempt_count": attempts},
        )
        await repo.upsert_profile(conn, topup.account_id, {"first_topup_success": True, "updated_at": now})
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
        await repo.update_invoice(conn, topup.invoice_id, {"attempt_count": attempts})
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
        await repo.update_invoice(
            conn, topup.invoice_id, {"status": "uncollectible", "attempt_count": attempts}
        )
    settled = _topup(await repo.get_topup(conn, topup_id))
    if settled.status != topup.status:
        await autotopup_state.topup_settled(conn, settled, topup.status, balances[topup.account_id], now)
    return settled


async def get_topup(conn: AsyncConnection, topup_id: str) -> Topup:
    row = await repo.get_topup(conn, topup_id)
    if row is None:
        raise NotFound(f"no top-up {topup_id!r}")
    return _topup(row)


async def list_topups(conn: AsyncConnection, account_id: str, *, limit: int) -> list[Topup]:
    """Newest first."""
    return [_topup(r) for r in await arepo.list_topups(conn, account_id, limit)]


async def topup_for_invoice(conn: AsyncConnection, account_id: str, invoice_id: str) -> Topup:
    """The account's top-up behind an invoice id (`payment_intent_id` on the Cloudflare wire).
    Another account's id is NotFound too."""
    row = await repo.topup_by_invoice(conn, account_id, invoice_id)
    if row is None:
        raise NotFound(f"no top-up with payment_intent_id {invoice_id!r}", field="payment_intent_id")
    return _topup(row)


async def onboarded_before(conn: AsyncConnection, topup: Topup) -> bool:
    """Whether the account had completed another top-up before this one (Cloudflare's
    `onboarding`: "whether the user was already onboarded")."""
    count = await repo.count_completed_topups(
        conn, topup.account_id, exclude=topup.id, created_before=topup.created_at
    )
    return count > 0


class _Row:
    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)
