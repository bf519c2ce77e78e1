"""Card charges of monthly invoices (postpaid statements with an amount due): the xAI
`chargerAttempts`.

A charge is an attempt row (ticket 0, 1, ...) committed before the processor is called under
the key `statement:<invoice id>:<ticket>`, and the answer is recorded in a second
transaction (workflows.statements.charge_due). A pending attempt found again (a crash, or a
second worker) is sent again under the same key, so the processor answers the same charge:
an attempt never charges twice. Both transactions take the account lock, so two workers
never claim two attempts of one invoice.

* Success: the attempt `succeeded`, the invoice `paid`, and its amount credited to the ledger
  (kind `payment`, ref `statement:<invoice id>`, once), which restores the balance the
  postpaid usage took below zero.
* Decline (or 3-D Secure, impossible off session): the attempt `failed`; the next one is due
  RETRY_AFTER later, on the default card then; after MAX_ATTEMPTS declines the invoice is
  `uncollectible` (xAI FAILED).
* No default card at the invoice's processor: no attempt; the invoice stays open until a
  card is saved (or the operator marks it paid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import cards
from creditgate.billing import invoices_repo as repo
from creditgate.billing.models import billing_profiles, invoices, statement_charges
from creditgate.ledger import service as ledger
from creditgate.money import cents
from creditgate.payments.gateway import ChargeRequest, ChargeResult

ORIGIN = "statement"
MAX_ATTEMPTS = 4
RETRY_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Attempt:
    invoice_id: str
    ticket: int
    account_id: str
    payment_method_id: str
    amount: int  # cents
    status: str  # pending | succeeded | failed
    payment_id: str | None
    failure_code: str | None
    created_at: datetime


@dataclass(frozen=True)
class Claim:
    """An attempt to send to the processor."""

    attempt: Attempt
    request: ChargeRequest


def _attempt(row: Any) -> Attempt:
    return Attempt(
        row.invoice_id,
        int(row.ticket),
        row.account_id,
        row.payment_method_id,
        int(row.amount),
        row.status,
        row.payment_id,
        row.failure_code,
        row.created_at,
    )


async def attempts_of(conn: AsyncConnection, invoice_ids: Sequence[str]) -> dict[str, list[Attempt]]:
    """The charge attempts of these invoices, by invoice, in ticket order."""
    if not invoice_ids:
        return {}
    c = statement_charges.c
    stmt = (
        select(statement_charges).where(c.invoice_id.in_(list(invoice_ids))).order_by(c.invoice_id, c.ticket)
    )
    out: dict[str, list[Attempt]] = {}
    for row in await conn.execute(stmt):
        out.setdefault(row.invoice_id, []).append(_attempt(row))
    return out


async def due_now(conn: AsyncConnection, now: datetime, *, limit: int) -> list[str]:
    """Open monthly invoices with an amount due whose next attempt is due, of accounts with a
    default card (charge candidates; `claim` decides under the lock), oldest first."""
    i, p = invoices.c, billing_profiles.c
    stmt = (
        select(i.id, i.created_at)
        .join(billing_profiles, p.account_id == i.account_id)
        .where(
            i.origin == ORIGIN,
            i.status == "open",
            i.amount_due > 0,
            p.default_payment_method_id.is_not(None),
        )
        .order_by(i.created_at, i.id)
    )
    rows = list(await conn.execute(stmt))
    attempts = await attempts_of(conn, [row.id for row in rows])
    due = []
    for row in rows:
        at = next_attempt_at(attempts.get(row.id, []), row.created_at)
        if at is not None and at <= now:
            due.append(row.id)
    return due[:limit]


def next_attempt_at(attempts: list[Attempt], created_at: datetime) -> datetime | None:
    """When the next attempt is due (None once the attempts are used up)."""
    if not attempts:
        return created_at
    if attempts[-1].status == "pending":
        return attempts[-1].created_at
    if len(attempts) >= MAX_ATTEMPTS:
        return None
    return attempts[-1].created_at + RETRY_AFTER


async def claim(conn: AsyncConnection, invoice_id: str, processor: str, now: datetime) -> Claim | None:
    """The attempt to send now for this invoice, if any: a pending one again, or a new one
    on the default card when one is due. Takes the account lock."""
    invoice = await repo.get_invoice(conn, invoice_id)
    if invoice is None:
        return None
    await ledger.lock(conn, [invoice.account_id])
    invoice = await repo.get_invoice(conn, invoice_id)
    if invoice is None or invoice.status != "open" or invoice.amount_due <= 0:
        return None
    profile = await cards.get_profile(conn, invoice.account_id)
    if profile is None or profile.processor != processor or not profile.customer_id:
        return None
    attempts = (await attempts_of(conn, [invoice_id])).get(invoice_id, [])
    due_at = next_attempt_at(attempts, invoice.created_at)
    if due_at is None or due_at > now:
        return None
    if attempts and attempts[-1].status == "pending":
        attempt = attempts[-1]
    else:
        if profile.default_payment_method_id is None:
            return None
        attempt = Attempt(
            invoice_id,
            len(attempts),
            invoice.account_id,
            profile.default_payment_method_id,
            invoice.amount_due,
            "pending",
            None,
            None,
            now,
        )
        await conn.execute(statement_charges.insert().values(**asdict(attempt), updated_at=now))
        await repo.update_invoice(conn, invoice_id, {"attempt_count": attempt.ticket + 1})
    request = ChargeRequest(
        customer_id=profile.customer_id,
        payment_method_id=attempt.payment_method_id,
        amount_cents=attempt.amount,
        currency=invoice.currency,
        off_session=True,
        idempotency_key=f"statement:{invoice_id}:{attempt.ticket}",
        metadata={"creditgate_invoice_id": invoice_id, "creditgate_account_id": invoice.account_id},
        description=f"Statement {invoice.number}",
    )
    return Claim(attempt, request)


async def record(conn: AsyncConnection, attempt: Attempt, result: ChargeResult, now: datetime) -> str:
    """Record the processor's answer to a claimed attempt (once; a repeat changes nothing).
    Returns the attempt's status."""
    await ledger.lock(conn, [attempt.account_id])
    c = statement_charges.c
    key = (c.invoice_id == attempt.invoice_id) & (c.ticket == attempt.ticket)
    row = (await conn.execute(select(statement_charges).where(key))).first()
    if row is None or row.status != "pending":
        return "missing" if row is None else str(row.status)
    succeeded = result.status == "succeeded"
    code = None
    if not succeeded:  # requires_action: 3-D Secure, which an off-session charge cannot do
        code = result.failure_code or (
            "authentication_required" if result.status == "requires_action" else None
        )
    status = "succeeded" if succeeded else "failed"
    await conn.execute(
        statement_charges.update()
        .where(key)
        .values(status=status, payment_id=result.payment_id or None, failure_code=code, updated_at=now)
    )
    if succeeded:
        posting = ledger.Posting(
            attempt.account_id,
            "payment",
            cents(attempt.amount),
            ref=f"statement:{attempt.invoice_id}",
            reason=f"monthly invoice {attempt.invoice_id} paid by card",
        )
        await ledger.post(conn, [posting], now)
        values = {"status": "paid", "amount_paid": attempt.amount, "paid_at": now}
        await repo.update_invoice(conn, attempt.invoice_id, values, from_statuses=("open",))
    elif attempt.ticket + 1 >= MAX_ATTEMPTS:
        await repo.update_invoice(
            conn, attempt.invoice_id, {"status": "uncollectible"}, from_statuses=("open",)
        )
    return status
