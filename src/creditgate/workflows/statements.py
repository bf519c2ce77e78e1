"""Monthly statements: close finished periods into statement invoices, charge the postpaid
ones to the default card, and mark one paid."""

from __future__ import annotations

import logging
from datetime import datetime

from creditgate.billing import statement_charges, statements
from creditgate.workflows.context import Context

log = logging.getLogger("creditgate.statements")

# database URL -> the newest month found fully closed. Accounts created later cannot need it
# (their created_at is after its end), so a pass skips the query until a month ends.
_CLOSED_THROUGH: dict[str, datetime] = {}


async def close_periods(ctx: Context, *, batch: int = 50, max_batches: int = 20) -> int:
    """Close every finished calendar month into one statement per account (once each); one
    account per transaction; then charge the monthly invoices that are due (charge_due).
    Returns how many statements were issued."""
    closed = await _close(ctx, batch=batch, max_batches=max_batches)
    await charge_due(ctx)
    return closed


async def _close(ctx: Context, *, batch: int, max_batches: int) -> int:
    db, clock = ctx.db, ctx.clock
    period, _ = statements.last_closable(clock())
    if _CLOSED_THROUGH.get(db.url) == period:
        return 0
    closed = 0
    for _ in range(max_batches):
        async with db.read() as conn:
            due = await statements.accounts_to_close(conn, clock(), limit=batch)
        for account_id in due:
            try:
                async with db.write() as conn:
                    closed += await statements.close_account(conn, account_id, clock(), ctx.seller)
            except Exception:
                log.exception("could not close the statements of account %s; next pass retries", account_id)
                return closed
        if len(due) < batch:
            _CLOSED_THROUGH[db.url] = period
            break
    return closed


async def charge_due(ctx: Context, *, limit: int = 200) -> int:
    """Charge the open monthly invoices whose next attempt is due to the account's default
    card (billing.statement_charges): one attempt per invoice per pass, claimed and recorded
    in two transactions around the processor call. Returns how many attempts got an answer."""
    proc = ctx.processor
    if proc is None:
        return 0
    answered = 0
    async with ctx.db.read() as conn:
        candidates = await statement_charges.due_now(conn, ctx.clock(), limit=limit)
    for invoice_id in candidates:
        async with ctx.db.write() as conn:
            claim = await statement_charges.claim(conn, invoice_id, proc.name, ctx.clock())
        if claim is None:
            continue
        try:
            result = await proc.charge(claim.request)
        except Exception:
            log.exception("charge of monthly invoice %s has no answer; the next pass retries it", invoice_id)
            continue
        async with ctx.db.write() as conn:
            status = await statement_charges.record(conn, claim.attempt, result, ctx.clock())
        log.info("monthly invoice %s, attempt %d: %s", invoice_id, claim.attempt.ticket, status)
        answered += 1
    return answered


async def mark_paid(ctx: Context, account_id: str, invoice_id: str) -> None:
    """The operator collected an open statement outside creditgate."""
    async with ctx.db.write() as conn:
        await statements.mark_paid(conn, account_id, invoice_id, ctx.clock())
