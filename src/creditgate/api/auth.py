"""Credentials: `Authorization: Bearer <token>`, or `X-Auth-Email` + `X-Auth-Key` with the key
as the token. Resolved principals are cached per process until revoked (the cache and how
revocation reaches every process: accounts/revocation.py)."""

from __future__ import annotations

import hashlib

from fastapi import Request

from creditgate.accounts import service as accounts
from creditgate.accounts.principal import Principal
from creditgate.api.state import services
from creditgate.errors import AuthenticationError, MissingCredentials


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
        found = svc.tokens.get(digest)
        if found is None:
            generation = svc.tokens.begin()
            try:
                async with svc.db.read() as conn:
                    found = await accounts.authenticate(conn, secret, svc.settings.secret("admin_token"))
            except AuthenticationError:
                continue
            svc.tokens.put(digest, found, generation)
        request.state.account_id = found.account_id  # for the access log
        return found
    raise AuthenticationError("Invalid access token")
