"""The Cloudflare wire: envelope, error codes, and the small parsers every route shares."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from creditgate.api.errors import register_renderer
from creditgate.api.responses import JSON
from creditgate.billing.service import TopupConfig
from creditgate.clock import from_ms, to_ms
from creditgate.errors import (
    AuthenticationError,
    Conflict,
    CreditgateError,
    MissingCredentials,
    NotFound,
    PaymentFailed,
    PermissionDenied,
    ValidationError,
)

PREFIX = "/client/v4"
BILLING = PREFIX + "/accounts/{account_id}/ai-gateway/billing"
MAX_MS = 253_370_764_799_999  # 9998-12-31T23:59:59.999Z: month arithmetic stays in range


def ok(result: Any, status: int = 200) -> Response:
    """A success envelope. `result` must be a JSON object (the SDK crashes on anything else)."""
    return JSON({"errors": [], "messages": [], "result": result, "success": True}, status_code=status)


def classify(exc: CreditgateError, status: int) -> tuple[int, int, str]:
    """(HTTP status, Cloudflare error code, message) for a creditgate error."""
    if isinstance(exc, MissingCredentials):
        return 400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers"
    if isinstance(exc, AuthenticationError):
        return 403, 9109, "Invalid access token"
    if isinstance(exc, PermissionDenied):
        return 403, 10000, f"Authentication error: {exc.message}"
    if exc.code == "no_route":
        return 404, 7003, "No route for the URI"
    if exc.code == "method_not_allowed":
        return 405, 1405, "Method not allowed"
    if isinstance(exc, NotFound):
        return 404, 1004, exc.message
    if isinstance(exc, PaymentFailed):
        return 402, 1402, exc.message
    if isinstance(exc, Conflict):
        return 409, 1409, exc.message
    if isinstance(exc, ValidationError) or status == 400:
        return 400, 1002 if exc.field == "body" else 1001, exc.message
    if status >= 500:
        return status, 1000 + status, exc.message
    return status, 1000, exc.message


def render_error(request: Request, status: int, exc: CreditgateError) -> Response:
    """Errors under /client/v4, in Cloudflare's envelope. After a top-up may have reached the
    card processor, the SDK is told not to resend it (`x-should-retry: false`)."""
    status, code, message = classify(exc, status)
    item: dict[str, Any] = {"code": code, "message": message}
    if exc.field and exc.field != "body" and status in (400, 402, 404, 409):
        item["source"] = {"pointer": "/" + exc.field}
    headers = {}
    if request.method == "POST" and request.url.path.endswith("/billing/topup"):
        headers["x-should-retry"] = "false"
    body = {"errors": [item], "messages": [], "result": None, "success": False}
    return JSON(body, status_code=status, headers=headers)


register_renderer(PREFIX, render_error)


def config_wire(config: TopupConfig) -> dict[str, Any]:
    """The auto top-up config with all five keys, two of them camelCase as the SDK expects."""
    return {
        "amount": config.amount,
        "threshold": config.threshold,
        "disabledReason": config.disabled_reason,
        "error": config.error,
        "lastFailedAt": to_ms(config.last_failed_at) if config.last_failed_at else None,
    }


def ms_param(query: QueryParams, name: str) -> datetime | None:
    """An optional Unix-milliseconds query value. Floats such as 1700000000000.0 are fine;
    a fractional millisecond is dropped. Returns an aware datetime or None."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 <= value <= MAX_MS:
        raise ValidationError(f"{name} must be Unix milliseconds, e.g. 1700000000000", field=name)
    return from_ms(int(value.to_integral_value(rounding=ROUND_FLOOR)))


def int_param(query: QueryParams, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ValidationError(f"{name} must be a positive integer", field=name)
    return int(raw)


def require_keys(body: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if body.get(name) is None:
            raise ValidationError(f"{name} is required", field=name)
