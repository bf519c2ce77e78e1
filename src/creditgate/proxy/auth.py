"""The customer's key: an account token of scope `api`, sent as each SDK sends its key
(`Authorization: Bearer` for OpenAI; `x-api-key`, or a Bearer token, for Anthropic).

Resolved through the process's token cache (`ctx.tokens`, accounts/revocation.py), as every
other token: a revocation evicts it in every process at once, and concurrent misses on one key
share one database read."""

from __future__ import annotations

import hashlib

from starlette.requests import Request

from creditgate.accounts import service as accounts
from creditgate.accounts.principal import Principal
from creditgate.errors import AuthenticationError, PermissionDenied
from creditgate.workflows.context import Context

_KEY_HEADERS = frozenset({b"x-api-key", b"authorization"})


def presented_key(request: Request) -> str:
    """The key, from one pass over the raw headers (`x-api-key` first, then a Bearer token)."""
    found: dict[bytes, bytes] = {}
    for name, value in request.scope["headers"]:
        if name in _KEY_HEADERS and name not in found:
            found[name] = value
    key = found.get(b"x-api-key", b"").decode("latin-1").strip()
    if key:
        return key
    header = found.get(b"authorization", b"").decode("latin-1")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    raise AuthenticationError("You didn't provide an API key.")


async def api_caller(ctx: Context, request: Request) -> Principal:
    """The account behind the key; only `api` tokens may call models through the proxy."""
    key = presented_key(request)

    async def lookup() -> Principal:
        async with ctx.db.read() as conn:
            return await accounts.authenticate(conn, key, ctx.settings.secret("admin_token"))

    try:
        found = await ctx.tokens.resolve(hashlib.sha256(key.encode()).hexdigest(), lookup)
    except AuthenticationError:
        raise AuthenticationError("Incorrect API key provided.") from None
    if found.account_id is None or found.scope != "api":
        raise PermissionDenied(
            f"this key's scope ({found.scope}) may not call models; create a token of scope api"
        )
    request.state.account_id = found.account_id  # for the access log
    return found
