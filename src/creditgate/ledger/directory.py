"""Finding accounts for the operator console: by id or name, a page at a time in id order."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.ledger.models import accounts
from creditgate.ledger.rows import Account


async def search_accounts(
    conn: AsyncConnection, text: str, *, after: str | None, limit: int
) -> list[Account]:
    """Accounts whose id or name contains `text` (case-insensitive; '%' and '_' are plain
    characters), in id order, the first `limit` with an id after `after`."""
    stmt = select(accounts).order_by(accounts.c.id).limit(limit)
    if text:
        needle = text.lower()
        stmt = stmt.where(
            or_(
                func.lower(accounts.c.id).contains(needle, autoescape=True),
                func.lower(accounts.c.name).contains(needle, autoescape=True),
            )
        )
    if after is not None:
        stmt = stmt.where(accounts.c.id > after)
    return [Account(**row._asdict()) for row in await conn.execute(stmt)]
