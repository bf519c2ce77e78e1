"""Errors in each API's own shape: OpenAI's `{"error": {message, type, param, code}}` and
Anthropic's `{"type": "error", "error": {type, message}}`."""

from __future__ import annotations

import math

import orjson
from starlette.responses import Response

from creditgate.errors import (
    AuthenticationError,
    CreditgateError,
    InsufficientCredit,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    SpendingLimitReached,
    UpstreamFailed,
    UpstreamTimeout,
)

OPENAI = "openai"
ANTHROPIC = "anthropic"

# error class -> (HTTP status, OpenAI type, OpenAI code, Anthropic status, Anthropic type)
_SHAPES: list[tuple[type[CreditgateError], int, str, str, int, str]] = [
    (InsufficientCredit, 429, "insufficient_quota", "insufficient_quota", 402, "billing_error"),
    (SpendingLimitReached, 429, "rate_limit_exceeded", "spending_limit_reached", 429, "rate_limit_error"),
    (UpstreamTimeout, 504, "server_error", "upstream_timeout", 504, "timeout_error"),
    (UpstreamFailed, 502, "server_error", "upstream_error", 502, "api_error"),
    (NotFound, 404, "invalid_request_error", "model_not_found", 404, "not_found_error"),
    (AuthenticationError, 401, "invalid_request_error", "invalid_api_key", 401, "authentication_error"),
    (PermissionDenied, 403, "invalid_request_error", "insufficient_permissions", 403, "permission_error"),
    (ServiceUnavailable, 503, "server_error", "service_unavailable", 503, "api_error"),
]


def error_response(family: str, exc: CreditgateError) -> Response:
    """The error as the family's SDK expects it (Retry-After on spending-limit refusals)."""
    shape = next((s for s in _SHAPES if isinstance(exc, s[0])), None)
    if shape is None:  # bad input (400, 413)
        status = an_status = exc.status
        oa_type, oa_code, an_type = "invalid_request_error", exc.code, "invalid_request_error"
    else:
        _, status, oa_type, oa_code, an_status, an_type = shape
    headers = {}
    if isinstance(exc, SpendingLimitReached) and exc.retry_after_ms is not None:
        headers["retry-after"] = str(max(1, math.ceil(exc.retry_after_ms / 1000)))
    if family == ANTHROPIC:
        body = {"type": "error", "error": {"type": an_type, "message": exc.message}}
        status = an_status
    else:
        body = {"error": {"message": exc.message, "type": oa_type, "param": exc.field, "code": oa_code}}
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def internal_error_response(family: str) -> Response:
    """A 500 in the family's shape, for a bug (logged by the caller; never its details)."""
    message = "creditgate failed to handle the request; it has been logged."
    if family == ANTHROPIC:
        body: dict[str, object] = {"type": "error", "error": {"type": "api_error", "message": message}}
    else:
        body = {
            "error": {"message": message, "type": "server_error", "param": None, "code": "internal_error"}
        }
    return Response(orjson.dumps(body), status_code=500, media_type="application/json")


def stream_error_event(family: str, message: str) -> bytes:
    """An error event the SDKs raise on when a stream breaks after it started."""
    if family == ANTHROPIC:
        data = orjson.dumps({"type": "error", "error": {"type": "api_error", "message": message}})
        return b"event: error\ndata: " + data + b"\n\n"
    data = orjson.dumps(
        {"error": {"message": message, "type": "server_error", "param": None, "code": "upstream_error"}}
    )
    return b"data: " + data + b"\n\n"
