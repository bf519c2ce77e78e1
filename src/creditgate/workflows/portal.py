"""The billing portal's way in, as Stripe's customer portal does it: the operator asks for a
one-time link (`POST /admin/v1/accounts/{id}/portal-sessions`, `creditgate portal link`),
the customer opens it and gets a session cookie for that one account. Account tokens may
sign in too (a `read` token gives a session that changes nothing), and the operator token
signs in to the console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from creditgate.accounts import portal
from creditgate.accounts import service as accounts
from creditgate.accounts.portal import Session
from creditgate.errors import AuthenticationError, PermissionDenied
from creditgate.workflows.context import Context

LINK_PATH = "/portal/session/"  # + the link token: where a portal link opens


@dataclass(frozen=True)
class PortalLink:
    """What the operator hands to the customer."""

    url: str
    expires_at: datetime


@dataclass(frozen=True)
class OpenedSession:
    """A session just started: `token` goes into the browser's cookie and nowhere else."""

    token: str
    session: Session


def _session_ttl(ctx: Context) -> timedelta:
    return timedelta(hours=ctx.settings.portal_session_hours)


async def create_link(ctx: Context, account_id: str, *, return_url: str | None = None) -> PortalLink:
    """A one-time portal link for the account (NotFound without it). `return_url`, like
    Stripe's, is the operator's page the portal offers to go back to."""
    ttl = timedelta(minutes=ctx.settings.portal_link_minutes)
    async with ctx.db.write() as conn:
        token, expires_at = await portal.create_link(
            conn, account_id, ctx.clock(), ttl, return_url=return_url
        )
    return PortalLink(url=ctx.settings.base_url.rstrip("/") + LINK_PATH + token, expires_at=expires_at)


async def open_link(ctx: Context, link_token: str) -> OpenedSession:
    """Use a link (once) and start a write session for its account; LinkUnusable otherwise.
    The link is spent in the same transaction that starts the session."""
    async with ctx.db.write() as conn:
        now = ctx.clock()
        account_id, return_url = await portal.use_link(conn, link_token, now)
        token, session = await portal.start_session(
            conn, account_id, "write", now, _session_ttl(ctx), return_url=return_url
        )
    return OpenedSession(token, session)


async def sign_in(ctx: Context, secret: str, *, operator: bool) -> OpenedSession:
    """Start a session from a presented token: an account's `read` or `write` token for the
    portal, the operator token for the console. AuthenticationError for an unknown token,
    PermissionDenied for one of the wrong kind (a gateway token, or an account token at the
    console)."""
    secret = secret.strip()
    if not secret:
        raise AuthenticationError("Enter a token.")
    async with ctx.db.write() as conn:
        try:
            caller = await accounts.authenticate(conn, secret, ctx.settings.secret("admin_token"))
        except AuthenticationError:
            raise AuthenticationError("That token is not valid.") from None
        if operator != caller.is_operator:
            raise PermissionDenied(
                "The console needs the operator token."
                if operator
                else "Sign in with an account token (read or write scope); the operator uses the console."
            )
        if caller.scope not in ("read", "write", "operator"):
            raise PermissionDenied("A gateway token cannot sign in; use a read or write token.")
        token, session = await portal.start_session(
            conn, caller.account_id, caller.scope, ctx.clock(), _session_ttl(ctx)
        )
    return OpenedSession(token, session)


async def current_session(ctx: Context, token: str | None) -> Session | None:
    """The live session behind a cookie value, or None."""
    if not token:
        return None
    async with ctx.db.read() as conn:
        return await portal.find_session(conn, token, ctx.clock())


async def sign_out(ctx: Context, token: str) -> None:
    async with ctx.db.write() as conn:
        await portal.end_session(conn, token, ctx.clock())
