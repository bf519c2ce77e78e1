"""Idempotency-Key handling for money-moving writes.

The key is claimed first, inside the write's own transaction: a concurrent request with the
same key waits on the unique index until the first commits, then replays its response. Same
key + same request replays; the same key with another request is a Conflict.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts import repository as repo
from creditgate.errors import Conflict, ValidationError

_PENDING = "000"


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: str


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def check_key(key: str) -> None:
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ValidationError("Idempotency-Key must be 1-255 printable characters", field="Idempotency-Key")


async def claim(
    conn: AsyncConnection, scope: str, key: str, req_hash: str, now: datetime
) -> StoredResponse | None:
    """Claim the key for this request. Returns None when the caller should do the work, or
    the stored response to replay. Raises Conflict when the key belongs to another request."""
    row = await repo.get_idempotency(conn, scope, key)
    if row is None:
        inserted = await repo.insert_idempotency(
            conn,
            {
                "scope": scope,
                "key": key,
                "request_hash": req_hash,
                "status_code": _PENDING,
                "response": "",
                "created_at": now,
            },
        )
        if inserted:
            return None
        row = await repo.get_idempotency(conn, scope, key)
    if row is None or row.status_code == _PENDING:
        raise Conflict("a request with this Idempotency-Key is in progress", field="Idempotency-Key")
    if row.request_hash != req_hash:
        raise Conflict("Idempotency-Key was already used with a different request", field="Idempotency-Key")
    return StoredResponse(int(row.status_code), row.response)


async def finish(conn: AsyncConnection, scope: str, key: str, response: StoredResponse) -> None:
    """Record the response, in the same transaction as the write it describes."""
    await repo.complete_idempotency(conn, scope, key, str(response.status_code), response.body)
