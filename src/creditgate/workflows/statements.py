"""Monthly statements: close finished periods into statement invoices, and mark one paid."""

from __future__ import annotations

import logging
from datetime import datetime

from creditgate.billing import statements
from creditgate.workflows.context import Context

log = logging.getLogger("creditgate.statements")

# database URL -> the newest month found fully closed. Accounts created later cannot need it
# (their created_at is after its end), so a pass skips the query until a month ends.
_CLOSED_THROUGH: dict[str, datetime] = {}


async def close_periods(ctx: Context, *, batch: int = 50, max_batches: int = 20) -> int:
    """Close every finished calendar month into one statement per account (once each); one
    account per transaction. Returns how many statements were issued."""
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


async def mark_paid(ctx: Context, account_id: str, invoice_id: str) -> None:
    """The operator collected an open statement outside creditgate."""
    async with ctx.db.write() as conn:
        await statements.mark_paid(conn, account_id, invoice_id, ctx.clock())
