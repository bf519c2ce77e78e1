"""Credentials: `Authorization: Bearer <token>`, or `X-Auth-Email` + `X-Auth-Key` with the key
as the token. Resolved principals are cached for a few seconds per process."""

from __future__ import annotations

import hashlib
import time

from fastapi import Request

from creditgate.accounts import service as accounts
from creditgate.accounts.principal import Principal
from creditgate.api.state import services
from creditgate.errors import AuthenticationError, MissingCredentials

CACHE_SECONDS = 5.0
_cache: dict[str, tuple[Principal, float]] = {}


def presented_secrets(request: Request) -> list[str]:
    """Every credential on the request, Bearer first. MissingCredentials if there are none."""
    secrets: list[str] = []
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        secrets.append(header[7:].strip())
    key, email = request.headers.get("x-auth-key"), request.headers.get("x-auth-email")
    if key and email:
        secrets.append(key.strip())
    if not secrets:
        raise MissingCredentials("Missing X-Auth-Key, X-Auth-Email or Authorization headers")
    return secrets


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller (any presented credential may match)."""
    svc = services(request)
    for secret in presented_secrets(request):
        digest = hashlib.sha256(secret.encode()).hexdigest()
        hit = _cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            request.state.account_id = hit[0].account_id  # for the access log
            return hit[0]
        try:
            async with svc.db.read() as conn:
                found = await accounts.authenticate(conn, secret, svc.settings.secret("admin_token"))
        except AuthenticationError:
            continue
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (found, now + CACHE_SECONDS)
        request.state.account_id = found.account_id  # for the access log
        return found
    raise AuthenticationError("Invalid access token")


def forget_cached_tokens() -> None:
    """Drop cached principals (after a revocation in this process)."""
    _cache.clear()
