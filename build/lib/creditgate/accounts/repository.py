"""SQL for tokens and idempotency keys. Only accounts.service imports this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.models import idempotency_keys, tokens


async def insert_token(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(tokens.insert().values(**row))


async def token_by_hash(conn: AsyncConnection, token_hash: str) -> Any:
    stmt = select(tokens).where(tokens.c.token_hash == token_hash, tokens.c.revoked_at.is_(None))
    return (await conn.execute(stmt)).first()


async def list_tokens(conn: AsyncConnection, account_id: str) -> list[Any]:
    stmt = select(tokens).where(tokens.c.account_id == account_id).order_by(tokens.c.created_at)
    return list(await conn.execute(stmt))


async def revoke_token(conn: AsyncConnection, account_id: str, token_id: str, now: datetime) -> int:
    result = await conn.execute(
        tokens.update()
        .where(tokens.c.id == token_id, tokens.c.account_id == account_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)


async def get_idempotency(conn: AsyncConnection, scope: str, key: str) -> Any:
    stmt = select(idempotency_keys).where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
    return (await conn.execute(stmt)).first()


async def insert_idempotency(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """Insert the record; False when the key was taken concurrently."""
    try:
        async with conn.begin_nested():
            await conn.execute(idempotency_keys.insert().values(**row))
    except IntegrityError:
        return False
    return True


async def complete_idempotency(
    conn: AsyncConnection, scope: str, key: str, status_code: str, body: str
) -> None:
    await conn.execute(
        idempotency_keys.update()
        .where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
        .values(status_code=status_code, response=body)
    )
