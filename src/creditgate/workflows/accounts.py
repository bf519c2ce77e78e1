"""Accounts, their ledger and their API tokens: what the admin API and the CLI both do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from creditgate.accounts import service as accounts
from creditgate.accounts.service import IssuedToken
from creditgate.ledger import service as ledger
from creditgate.money import cents
from creditgate.workflows.context import Context


@dataclass(frozen=True)
class AccountWithEntries:
    account: Any
    entries: list[Any]


async def create_account(
    ctx: Context, account_id: str, *, name: str | None, mode: str, postpaid_limit_cents: int = 0
) -> Any:
    """Open an account with an operator-chosen id; `postpaid_limit_cents` is the operator's
    postpaid ceiling (the hard spending limit; 0: prepaid only)."""
    async with ctx.db.write() as conn:
        return await accounts.create_account(
            conn,
            account_id,
            name=name,
            mode=mode,
            postpaid_limit=cents(postpaid_limit_cents),
            now=ctx.clock(),
        )


async def list_accounts(ctx: Context, *, limit: int, after: str | None = None) -> list[Any]:
    async with ctx.db.read() as conn:
        return await ledger.list_accounts(conn, limit=limit, after=after)


async def get_account(ctx: Context, account_id: str) -> Any:
    async with ctx.db.read() as conn:
        return await ledger.get_account(conn, account_id)


async def account_with_entries(
    ctx: Context, account_id: str, *, limit: int, before_id: int | None = None
) -> AccountWithEntries:
    """An account and its newest ledger entries (before `before_id` when given)."""
    async with ctx.db.read() as conn:
        account = await ledger.get_account(conn, account_id)
        entries = await ledger.list_entries(conn, account_id, limit=limit, before_id=before_id)
    return AccountWithEntries(account, entries)


async def create_token(ctx: Context, account_id: str, *, scope: str, name: str | None) -> IssuedToken:
    """Issue a token; its secret is in the result once and stored only hashed."""
    async with ctx.db.write() as conn:
        return await accounts.create_token(conn, account_id, scope=scope, name=name, now=ctx.clock())


async def list_tokens(ctx: Context, account_id: str) -> list[Any]:
    async with ctx.db.read() as conn:
        return await accounts.list_tokens(conn, account_id)


async def revoke_token(ctx: Context, account_id: str, token_id: str) -> None:
    """Revoke a token: refused at once by this process and, through the NOTIFY its transaction
    sends on PostgreSQL, by every other (accounts/revocation.py)."""
    async with ctx.db.write() as conn:
        await accounts.revoke_token(conn, account_id, token_id, ctx.clock())
    ctx.tokens.evict_token(token_id)
