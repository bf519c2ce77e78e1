"""Gap-free invoice numbers: one counter row per number series, taken in the issuing transaction.

`next_number(conn, series)` increments the series' row with `UPDATE ... SET last_number =
last_number + 1 ... RETURNING last_number` inside the transaction that inserts the invoice:

* the UPDATE holds the row lock until that transaction ends, so a second issuer of the same
  series waits, then reads the committed value (PostgreSQL re-checks the row under READ
  COMMITTED; SQLite serializes writers): two invoices never share a number;
* if the transaction rolls back, so does the increment: the next invoice takes the number
  back and no number is skipped.

A series' first number creates its row (inside a savepoint: a concurrent first issuer that
wins the insert makes ours fail on the primary key, and we increment its row instead).

Series today: one per account (the account id), numbered `PREFIX-0001` with a prefix derived
from the account, as Stripe numbers per customer; each series is gap-free and the prefixes
keep every number unique for the seller. A seller-wide series is another key in the same
table (see docs/invoices.md).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing.invoice_models import invoice_counters

MAX_SERIES_LENGTH = 80


async def next_number(conn: AsyncConnection, series: str) -> int:
    """The next number of `series` (1, 2, 3, ...), reserved until the transaction ends."""
    if not series or len(series) > MAX_SERIES_LENGTH:
        raise ValueError(f"an invoice number series is 1 to {MAX_SERIES_LENGTH} characters")
    taken = await _increment(conn, series)
    if taken is not None:
        return taken
    try:
        async with conn.begin_nested():
            await conn.execute(invoice_counters.insert().values(series=series, last_number=1))
        return 1
    except IntegrityError:
        pass  # another transaction created the row first (and has committed): increment it
    taken = await _increment(conn, series)
    if taken is None:  # pragma: no cover - the row exists: its insert just conflicted
        raise RuntimeError(f"invoice number series {series!r} vanished")
    return taken


async def _increment(conn: AsyncConnection, series: str) -> int | None:
    stmt = (
        update(invoice_counters)
        .where(invoice_counters.c.series == series)
        .values(last_number=invoice_counters.c.last_number + 1)
        .returning(invoice_counters.c.last_number)
    )
    value = (await conn.execute(stmt)).scalar_one_or_none()
    return None if value is None else int(value)


def format_number(account_id: str, seq: int) -> str:
    """Stripe-style `PREFIX-0001`: a stable per-account prefix and the account's sequence."""
    prefix = hashlib.sha256(account_id.encode()).hexdigest()[:8].upper()
    return f"{prefix}-{seq:04d}"


async def next_invoice_number(conn: AsyncConnection, account_id: str) -> str:
    """The number of the account's next invoice. Call it in the transaction that inserts it."""
    return format_number(account_id, await next_number(conn, account_id))
