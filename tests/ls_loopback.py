"""Run localstripe for tests: loopback only, no pickle file, Idempotency-Key replay.

Usage: python tests/ls_loopback.py [PORT]   (0 or omitted = a free port); prints
LOCALSTRIPE_PORT=<n> on stdout once bound. Env LOCALSTRIPE_DROP_PARAMS="description,receipt_email"
drops those POST parameters (real Stripe accepts them, localstripe rejects them with a 400).

localstripe (GPL-3.0) runs as this separate process only; nothing of it is shipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import localstripe.resources as resources
from aiohttp import web
from localstripe import server

# The stock CLI pickles the whole store to /tmp/localstripe.pickle after every write and
# reloads it at start: state would leak between runs and parallel instances.
resources.Store.dump_to_disk = lambda self: None
resources.Store.try_load_from_disk = lambda self: None

DROP = {p for p in os.environ.get("LOCALSTRIPE_DROP_PARAMS", "").split(",") if p}
if DROP:
    _orig_get_post_data = server.get_post_data

    async def _get_post_data(request: web.Request, remove_auth: bool = True) -> Any:
        data = await _orig_get_post_data(request, remove_auth=remove_auth)
        if isinstance(data, dict):
            for key in DROP:
                data.pop(key, None)
        return data

    server.get_post_data = _get_post_data  # looked up at call time

# (Authorization, Idempotency-Key) -> (request fingerprint, status, body)
_idem: dict[tuple[str, str], tuple[str, int, str]] = {}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Replay a stored response for a repeated Idempotency-Key, like Stripe; 400 when the key
    comes back with other parameters. localstripe itself ignores the header."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    fingerprint = hashlib.sha256(request.path_qs.encode() + b"\0" + await request.read()).hexdigest()
    ident = (request.headers.get("Authorization", ""), key)
    if ident in _idem:
        old_fingerprint, status, text = _idem[ident]
        if old_fingerprint != fingerprint:
            return web.json_response(
                {
                    "error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                    }
                },
                status=400,
            )
        return web.Response(
            text=text, status=status, content_type="application/json", headers={"Idempotent-Replayed": "true"}
        )
    resp = await handler(request)
    if isinstance(resp, web.Response) and (resp.status < 400 or resp.status == 402) and resp.text:
        _idem[ident] = (fingerprint, resp.status, resp.text)
    return resp


def main() -> None:
    server.app.middlewares.insert(0, idempotency_middleware)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))  # loopback only: the stock CLI binds every interface
    print(f"LOCALSTRIPE_PORT={sock.getsockname()[1]}", flush=True)
    access = logging.getLogger("aiohttp.access")
    access.setLevel(logging.INFO)
    access.addHandler(logging.StreamHandler())
    web.run_app(server.app, sock=sock, access_log=access, print=None)


if __name__ == "__main__":
    main()
