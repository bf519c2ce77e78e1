"""Billing portal access: one-time links and browser sessions.

A link token is handed to one customer, works once and expires after minutes; opening it
starts a session whose token lives in an HttpOnly cookie and expires after hours. Both are
random secrets stored only as SHA-256 hashes. Using a link is a guarded UPDATE, so two
concurrent openings cannot both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.models import portal_links, portal_sessions
from creditgate.accounts.service import hash_token
from creditgate.errors import LinkUnusable, ValidationError
from creditgate.ids import new_secret
from creditgate.ledger import service as ledger

LINK_PREFIX = "cgpl_"  # a portal link's token
SESSION_PREFIX = "cgps_"  # a portal or console session's cookie
SESSION_SCOPES = ("write", "read", "operator")


@dataclass(frozen=True)
class Session:
    """A signed-in browser: one account (scope write or read), or the operator."""

    account_id: str | None
    scope: str
    expires_at: datetime
    return_url: str | None = None  # where the operator's "back" link goes

    @property
    def may_write(self) -> bool:
        return self.scope in ("write", "operator")


def check_return_url(value: object) -> str | None:
    """An absolute http(s) URL of at most 500 characters, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 500 or not value.startswith(("https://", "http://")):
        raise ValidationError(
            "return_url must be an http(s) URL of at most 500 characters", field="return_url"
        )
    try:
        host = urlsplit(value).netloc
    except ValueError:  # e.g. an unclosed IPv6 bracket
        host = ""
    if not host or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise ValidationError("return_url must be an http(s) URL with a host", field="return_url")
    return value


async def create_link(
    conn: AsyncConnection, account_id: str, now: datetime, ttl: timedelta, *, return_url: str | None = None
) -> tuple[str, datetime]:
    """A new link token for the account (NotFound without the account) and its expiry."""
    return_url = check_return_url(return_url)
    await ledger.get_account(conn, account_id)
    token = LINK_PREFIX + new_secret(32)
    expires_at = now + ttl
    await conn.execute(
        insert(portal_links).values(
            token_hash=hash_token(token),
            account_id=account_id,
            created_at=now,
            expires_at=expires_at,
            return_url=return_url,
        )
    )
    return token, expires_at


async def use_link(conn: AsyncConnection, token: str, now: datetime) -> tuple[str, str | None]:
    """Mark the link used and return its account id and return URL; LinkUnusable if it was
    used, has expired or does not exist (the message says which, nothing about other links)."""
    digest = hash_token(token)
    used = await conn.execute(
        update(portal_links)
        .where(
            portal_links.c.token_hash == digest,
            portal_links.c.used_at.is_(None),
            portal_links.c.expires_at > now,
        )
        .values(used_at=now)
        .returning(portal_links.c.account_id, portal_links.c.return_url)
    )
    spent = used.first()
    if spent is not None:
        return str(spent.account_id), spent.return_url
    row = (await conn.execute(select(portal_links).where(portal_links.c.token_hash == digest))).first()
    if row is None:
        raise LinkUnusable("This portal link is not valid. Ask for a new link.")
    if row.used_at is not None:
        raise LinkUnusable(
            "This portal link has already been used; a link works only once. Ask for a new link."
        )
    raise LinkUnusable("This portal link has expired. Ask for a new link.")


async def start_session(
    conn: AsyncConnection,
    account_id: str | None,
    scope: str,
    now: datetime,
    ttl: timedelta,
    *,
    return_url: str | None = None,
) -> tuple[str, Session]:
    """A new session token (shown only to the browser's cookie) and what it grants."""
    if scope not in SESSION_SCOPES or (scope == "operator") != (account_id is None):
        raise ValueError(f"no session of scope {scope!r} for account {account_id!r}")
    token = SESSION_PREFIX + new_secret(32)
    session = Session(account_id=account_id, scope=scope, expires_at=now + ttl, return_url=return_url)
    await conn.execute(
        insert(portal_sessions).values(
            token_hash=hash_token(token),
            account_id=account_id,
            scope=scope,
            created_at=now,
            expires_at=session.expires_at,
            return_url=return_url,
        )
    )
    return token, session


async def find_session(conn: AsyncConnection, token: str, now: datetime) -> Session | None:
    """The live session behind a cookie value, or None (unknown, ended or expired)."""
    if not token.startswith(SESSION_PREFIX):
        return None
    row = (
        await conn.execute(
            select(portal_sessions).where(
                portal_sessions.c.token_hash == hash_token(token),
                portal_sessions.c.ended_at.is_(None),
                portal_sessions.c.expires_at > now,
            )
        )
    ).first()
    if row is None:
        return None
    return Session(
        account_id=row.account_id, scope=row.scope, expires_at=row.expires_at, return_url=row.return_url
    )


async def end_session(conn: AsyncConnection, token: str, now: datetime) -> None:
    await conn.execute(
        update(portal_sessions)
        .where(portal_sessions.c.token_hash == hash_token(token), portal_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )
