"""Monthly statements: each finished UTC calendar month closed into one invoice per account.

A month is closed `CLOSE_AFTER` after it ends (late usage reports still land in it), once
per account (primary key account + period start, taken under the account lock). Its lines
are the month's usage per provider/model from the rollups, plus one "late usage" line for
usage of earlier, already-closed months reported after they closed, so the statements of an
account always add up to all its usage. A month without usage is recorded (so it is never
looked at again) but issues no invoice.

What is due:

* prepaid accounts: nothing. Usage was paid from credit as it happened; an overdraft (a
  negative balance) is taken from the next top-up, so billing it here would charge twice.
  The statement is `paid`, amount_due 0; the PDF shows the credit applied.
* postpaid accounts: the part of the month's usage (what the ledger debited in the month)
  the balance does not cover, `min(usage, max(0, -balance at the month's end))`, in whole
  cents (billing.cycle). Status `open` when that is non-zero. Earlier unpaid statements are
  not billed again: their deficit is already in the balance, and each statement asks at most
  for its own usage. The statement job charges it to the account's default card
  (billing.statement_charges: the payment is credited to the ledger); the operator may also
  collect it outside creditgate and mark it paid (`mark_paid`).

`usage - due` is the prepaid part: the month's SPEND change in the prepaid balance view
(billing.balance_view), stored with the statement so it never moves once the month is closed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import cycle, invoices, statement_charges
from creditgate.billing import invoices_repo as repo
from creditgate.billing.invoices import month_bounds
from creditgate.billing.parties import Seller
from creditgate.billing.rows import Invoice, Statement
from creditgate.errors import Conflict, NotFound
from creditgate.ledger import history
from creditgate.ledger import service as ledger
from creditgate.ledger.rows import Account
from creditgate.metering import service as metering
from creditgate.money import to_usd_string, to_whole_cents
from creditgate.notify import service as notify

CLOSE_AFTER = timedelta(hours=1)
ORIGIN = "statement"
_BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)  # usage events cannot be older (metering.events)


def last_closable(now: datetime) -> tuple[datetime, datetime]:
    """The newest month that may be closed at `now`: [start, end)."""
    current_start, _ = month_bounds(now - CLOSE_AFTER)
    return month_bounds(current_start - timedelta(days=1))


async def accounts_to_close(conn: AsyncConnection, now: datetime, *, limit: int) -> list[str]:
    start, end = last_closable(now)
    return await repo.accounts_to_close(conn, start, end, limit)


async def close_account(conn: AsyncConnection, account_id: str, now: datetime, seller: Seller) -> int:
    """Close every finished month of the account not closed yet; returns how many months
    were closed. Takes the account lock, so two runners close each month once. `seller` is
    frozen into each statement invoice."""
    await ledger.lock(conn, [account_id])
    account = await ledger.get_account(conn, account_id)
    _, stop = last_closable(now)
    last = await repo.last_statement(conn, account_id)
    start = last.period_end if last is not None else month_bounds(account.created_at)[0]
    closed = 0
    while start < stop:
        _, end = month_bounds(start)
        await _close_month(conn, account, start, end, now, seller)
        start = end
        closed += 1
    return closed


async def _close_month(
    conn: AsyncConnection, account: Account, start: datetime, end: datetime, now: datetime, seller: Seller
) -> None:
    rows = await metering.usage_by_model(conn, account.id, start, end)
    earlier = sum(int(r.cost) for r in await metering.usage_by_model(conn, account.id, _BEGINNING, start))
    late = max(0, earlier - await repo.statement_totals_before(conn, account.id, start))
    lines: list[dict[str, Any]] = [cycle.usage_line(r) for r in rows if int(r.events) or int(r.cost)]
    if late:
        lines.append({"provider": None, "model": None, "events": 0, "cost": late, "late": True})
    total = sum(line["cost"] for line in lines)
    usage = await cycle.cycle_usage(conn, account.id, start, end)
    # the postpaid part at the balance the month ended with (billing.cycle)
    due = cycle.postpaid_part(account.mode, usage, await history.balance_at(conn, account.id, end))
    invoice_id = None
    if lines or due:
        invoice_id = await _issue(conn, account.id, start, total, due, now, seller)
    statement = Statement(
        account.id, start, end, invoice_id, account.mode, total, late, total - due, due, lines, now, usage
    )
    await repo.insert_statement(conn, statement)


async def _issue(
    conn: AsyncConnection,
    account_id: str,
    start: datetime,
    total: int,
    due: int,
    now: datetime,
    seller: Seller,
) -> str:
    due_cents = to_whole_cents(due)
    invoice = await invoices.issue_invoice(
        conn,
        account_id,
        origin=ORIGIN,
        status="open" if due_cents else "paid",
        amount_due=due_cents,
        description=f"Usage statement {start:%Y-%m}: ${to_usd_string(total)} of usage, "
        f"${to_usd_string(total - due)} paid from credits",
        now=now,
        seller=seller,
    )
    invoice_id = invoice.id
    payload = {
        "invoice_id": invoice_id,
        "origin": ORIGIN,
        "period": f"{start:%Y-%m}",
        "amount_due": due_cents,
        "currency": "usd",
        "usage_cents": to_whole_cents(total),
        "credits_cents": to_whole_cents(total) - due_cents,
    }
    await notify.emit(conn, account_id, "invoice.finalized", payload, now)
    return invoice_id


async def pdf_lines(conn: AsyncConnection, invoice: Invoice) -> list[tuple[str, int]] | None:
    """(description, cents) rows for a statement's PDF, ending with the totals; None for an
    invoice that is not a statement. Line amounts are rounded to the cent one by one; the
    totals come from the exact amounts."""
    if invoice.origin != ORIGIN:
        return None
    statement = await repo.statement_of_invoice(conn, invoice.id)
    if statement is None:
        return None
    rows: list[tuple[str, int]] = []
    for line in statement.lines:
        if line.get("late"):
            rows.append(("Usage of earlier periods reported after they closed", to_whole_cents(line["cost"])))
            continue
        events = line["events"]
        text = (
            f"{line['provider']}/{line['model']}: {events:,} request{'' if events == 1 else 's'}, "
            f"{line['input_tokens']:,} input tokens ({line.get('cached_tokens', 0):,} cached), "
            f"{line['output_tokens']:,} output tokens"
        )
        rows.append((text, to_whole_cents(line["cost"])))
    total, due = statement.total, statement.due
    rows.append(("Subtotal (usage)", to_whole_cents(total)))
    rows.append(("Paid from prepaid credit", to_whole_cents(due) - to_whole_cents(total)))
    return rows


async def period_of(conn: AsyncConnection, invoice: Invoice) -> tuple[datetime, datetime] | None:
    """The [start, end) billing period of a statement invoice; None for any other invoice."""
    if invoice.origin != ORIGIN:
        return None
    statement = await repo.statement_of_invoice(conn, invoice.id)
    return None if statement is None else (statement.period_start, statement.period_end)


async def mark_paid(conn: AsyncConnection, account_id: str, invoice_id: str, now: datetime) -> None:
    """The operator collected an open statement outside creditgate."""
    invoice = await repo.get_invoice(conn, invoice_id)
    if invoice is None or invoice.account_id != account_id or invoice.origin != ORIGIN:
        raise NotFound(f"no statement invoice {invoice_id!r}")
    if invoice.status == "paid":
        return
    await ledger.lock(conn, [account_id])  # the charge pass claims attempts under this lock
    attempts = (await statement_charges.attempts_of(conn, [invoice_id])).get(invoice_id, [])
    if attempts and attempts[-1].status == "pending":
        raise Conflict(f"a card charge of statement {invoice_id} is in progress; try again shortly")
    values = {"status": "paid", "amount_paid": invoice.amount_due, "paid_at": now}
    if not await repo.update_invoice(conn, invoice_id, values, from_statuses=("open",)):
        raise Conflict(f"statement {invoice_id} is {invoice.status}")
