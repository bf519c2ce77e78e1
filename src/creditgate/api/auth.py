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

_CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-auth-key", b"x-auth-email"})


def presented_secrets(request: Request) -> list[str]:
    """Every credential on the request, Bearer first. MissingCredentials if there are none.
    (One pass over the raw headers: three lookups through Starlette's Headers, each a scan,
    two of them usually a KeyError, were ~10 % of an authorize's CPU under py-spy.)"""
    found: dict[bytes, str] = {}
    for name, value in request.scope["headers"]:
        if name in _CREDENTIAL_HEADERS and name not in found:  # the first of each, as Headers.get
            found[name] = value.decode("latin-1")
    secrets: list[str] = []
    header = found.get(b"authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        secrets.append(header[7:].strip())
    key, email = found.get(b"x-auth-key"), found.get(b"x-auth-email")
    if key and email:
        secrets.append(key.strip())
    if not secrets:
        raise MissingCredentials("Missing X-Auth-Key, X-Auth-Email or Authorization headers")
    return secrets


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller (any presented credential may match)."""
    svc = services(request)
    admin_token = svc.settings.secret("admin_token")
    for secret in presented_secrets(request):

        async def lookup(secret: str = secret) -> Principal:
            async with svc.db.read() as conn:
                return await accounts.authenticate(conn, secret, admin_token)

        try:
            found = await svc.tokens.resolve(hashlib.sha256(secret.encode()).hexdigest(), lookup)
        except AuthenticationError:
            continue
        request.state.account_id = found.account_id  # for the access log
        return found
    raise AuthenticationError("Invalid access token")
