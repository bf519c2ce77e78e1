"""Sandbox-only: complete the 3-D Secure step of a sandbox payment.

`POST /sandbox/v1/authenticate {"client_secret": "...", "outcome": "succeed"|"fail"}` plays
the cardholder's part. The client_secret (returned by a top-up that needs authentication) is
the credential, as it is for Stripe.js; no token is needed. 404 unless payments=sandbox.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.responses import JSON, read_object
from creditgate.api.state import processor
from creditgate.errors import NotFound, ValidationError
from creditgate.payments.sandbox import SandboxProcessor

router = APIRouter(prefix="/sandbox/v1")


@router.post("/authenticate")
async def authenticate(request: Request) -> Response:
    proc = processor(request)
    if not isinstance(proc, SandboxProcessor):
        raise NotFound("the sandbox card processor is not in use on this server")
    body = await read_object(request, allowed={"client_secret", "outcome"})
    secret = body.get("client_secret")
    if not isinstance(secret, str) or not secret:
        raise ValidationError("client_secret is required", field="client_secret")
    outcome = body.get("outcome", "succeed")
    if outcome not in ("succeed", "fail"):
        raise ValidationError("outcome must be succeed or fail", field="outcome")
    result = await proc.authenticate(secret, succeed=outcome == "succeed")
    return JSON(
        {"payment_id": result.payment_id, "status": result.status, "failure_code": result.failure_code}
    )
