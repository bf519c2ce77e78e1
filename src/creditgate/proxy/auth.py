"""The customer's key: an account token of scope `api`, sent as each SDK sends its key
(`Authorization: Bearer` for OpenAI; `x-api-key`, or a Bearer token, for Anthropic).
Resolved principals are cached for a few seconds per process."""

from __future__ import annotations

import hashlib
import time

from starlette.requests import Request

from creditgate.accounts import service as accounts
from creditgate.accounts.principal import Principal
from creditgate.errors import AuthenticationError, PermissionDenied
from creditgate.workflows.context import Context

CACHE_SECONDS = 5.0
_cache: dict[str, tuple[Principal, float]] = {}


def presented_key(request: Request) -> str:
    key = request.headers.get("x-api-key", "").strip()
    if key:
        return key
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    raise AuthenticationError("You didn't provide an API key.")


async def api_caller(ctx: Context, request: Request) -> Principal:
    """The account behind the key; only `api` tokens may call models through the proxy."""
    key = presented_key(request)
    digest = hashlib.sha256(key.encode()).hexdigest()
    now = time.monotonic()
    hit = _cache.get(digest)
    if hit is not None and hit[1] > now:
        found = hit[0]
    else:
        try:
            async with ctx.db.read() as conn:
                found = await accounts.authenticate(conn, key, ctx.settings.secret("admin_token"))
        except AuthenticationError:
            raise AuthenticationError("Incorrect API key provided.") from None
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (found, now + CACHE_SECONDS)
    if found.account_id is None or found.scope != "api":
        raise PermissionDenied(
            f"this key's scope ({found.scope}) may not call models; create a token of scope api"
        )
    request.state.account_id = found.account_id  # for the access log
    return found
