"""Accounts and tokens. Tokens are random, shown once, and stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts import repository as repo
from creditgate.accounts.principal import OPERATOR, SCOPES, Principal
from creditgate.accounts.revocation import announce_revoked
from creditgate.errors import AuthenticationError, NotFound, ValidationError
from creditgate.ids import is_valid_account_id, new_id, new_secret
from creditgate.ledger import service as ledger

TOKEN_PREFIX = "cgt_"  # noqa: S105 - a public prefix, not a secret


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token. `token` is the only time the secret is visible."""

    id: str
    account_id: str
    scope: str
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_account(
    conn: AsyncConnection,
    account_id: str,
    *,
    name: str | None,
    mode: str,
    now: datetime,
    postpaid_limit: int = 0,
) -> Any:
    """Open an account with an operator-chosen id (32-hex, UUID or a similar slug) and the
    operator's postpaid ceiling (`postpaid_limit`, ledger units; 0: prepaid only)."""
    if not is_valid_account_id(account_id):
        raise ValidationError(
            "id must be 1-64 characters of letters, digits, '_', '.', ':' or '-'", field="id"
        )
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise ValidationError("name must be a string of at most 200 characters", field="name")
    return await ledger.open_account(
        conn, account_id, name=name or account_id, mode=mode, postpaid_limit=postpaid_limit, now=now
    )


async def create_token(
    conn: AsyncConnection, account_id: str, *, scope: str, now: datetime, name: str | None = None
) -> IssuedToken:
    if scope not in SCOPES:
        raise ValidationError(f"scope must be one of {', '.join(SCOPES)}", field="scope")
    await ledger.get_account(conn, account_id)
    secret = TOKEN_PREFIX + new_secret(32)
    token_id = new_id("tok")
    await repo.insert_token(
        conn,
        {
            "id": token_id,
            "account_id": account_id,
            "scope": scope,
            "token_hash": hash_token(secret),
            "prefix": secret[:10],
            "name": name,
            "created_at": now,
            "revoked_at": None,
        },
    )
    return IssuedToken(id=token_id, account_id=account_id, scope=scope, token=secret)


async def list_tokens(conn: AsyncConnection, account_id: str) -> list[Any]:
    await ledger.get_account(conn, account_id)
    return await repo.list_tokens(conn, account_id)


async def revoke_token(conn: AsyncConnection, account_id: str, token_id: str, now: datetime) -> None:
    """Revoke the token; every server process forgets it when this transaction commits."""
    if await repo.revoke_token(conn, account_id, token_id, now) == 0:
        raise NotFound(f"no active token {token_id!r} on this account")
    await announce_revoked(conn, token_id)


async def authenticate(conn: AsyncConnection, secret: str, admin_token: str | None) -> Principal:
    """Resolve a presented secret to a Principal, or raise AuthenticationError."""
    if admin_token and hmac.compare_digest(hash_token(secret), hash_token(admin_token)):
        return OPERATOR
    if not secret.startswith(TOKEN_PREFIX):
        raise AuthenticationError("invalid token")
    row = await repo.token_by_hash(conn, hash_token(secret))
    if row is None:
        raise AuthenticationError("invalid token")
    return Principal(account_id=row.account_id, scope=row.scope, token_id=row.id)
