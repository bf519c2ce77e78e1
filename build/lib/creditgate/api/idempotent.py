"""Run a money-moving write under the request's optional `Idempotency-Key`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts import idempotency
from creditgate.api.responses import JSON
from creditgate.api.state import services

Work = Callable[[AsyncConnection], Awaitable[tuple[int, Any]]]


async def run(request: Request, scope: str, work: Work) -> Response:
    """Do `work` in one write transaction. With an Idempotency-Key, a replay of the same
    request returns the stored response and a different request with the key gets 409."""
    svc = services(request)
    key = request.headers.get("idempotency-key")
    async with svc.db.write() as conn:
        if key is None:
            status, body = await work(conn)
            return JSON(body, status_code=status)
        idempotency.check_key(key)
        req_hash = idempotency.request_hash(request.method, request.url.path, await request.body())
        stored = await idempotency.claim(conn, scope, key, req_hash, svc.clock())
        if stored is not None:
            return Response(
                stored.body,
                status_code=stored.status_code,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        status, body = await work(conn)
        await idempotency.finish(
            conn, scope, key, idempotency.StoredResponse(status, orjson.dumps(body).decode())
        )
    return JSON(body, status_code=status)
