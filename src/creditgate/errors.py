"""Every error creditgate raises on purpose. Adapters map them to their API's wire shape."""

from __future__ import annotations


class CreditgateError(Exception):
    """Base class. `status` is the HTTP status an adapter should answer with."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(CreditgateError):
    """Input is malformed or out of range; `field` names the offending field."""

    status = 400
    code = "invalid_request"


class PayloadTooLarge(ValidationError):
    """The request body is larger than the service accepts."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ValidationError):
    """The request body is declared as something other than JSON."""

    status = 415
    code = "unsupported_media_type"


class AuthenticationError(CreditgateError):
    """No credentials, or credentials that match no token."""

    status = 401
    code = "unauthenticated"


class MissingCredentials(AuthenticationError):
    """The request carried no usable credential headers at all."""

    code = "missing_credentials"


class PermissionDenied(CreditgateError):
    """The credentials are valid but may not do this (wrong account or scope)."""

    status = 403
    code = "forbidden"


class NotFound(CreditgateError):
    """The object does not exist (or is not visible to the caller)."""

    status = 404
    code = "not_found"


class Conflict(CreditgateError):
    """The request conflicts with stored state, e.g. an idempotency key reused with another body."""

    status = 409
    code = "conflict"


class FailedPrecondition(CreditgateError):
    """The request is well formed but the account cannot do it now, e.g. no card to charge."""

    status = 400
    code = "failed_precondition"


class PaymentFailed(CreditgateError):
    """The card processor declined or failed the charge."""

    status = 402
    code = "payment_failed"

    def __init__(self, message: str, *, decline_code: str | None = None) -> None:
        super().__init__(message)
        self.decline_code = decline_code


class ReconcileMismatch(CreditgateError):
    """A cached balance differs from the sum of its ledger entries."""

    status = 500
    code = "reconcile_mismatch"


class ServiceUnavailable(CreditgateError):
    """A dependency (e.g. the card processor) could not be reached; nothing was decided."""

    status = 503
    code = "service_unavailable"


# The metering proxy (docs/proxy.md): refusals and upstream failures, rendered by the proxy in
# the OpenAI or Anthropic error shape.


class InsufficientCredit(CreditgateError):
    """The account's available credit does not cover the worst case of the call."""

    status = 402
    code = "insufficient_credit"


class SpendingLimitReached(CreditgateError):
    """The account's spending limit leaves no room for the call; `retry_after_ms` when known."""

    status = 429
    code = "spending_limit"

    def __init__(self, message: str, *, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class UpstreamFailed(CreditgateError):
    """The upstream provider failed (5xx, refused connection, broken stream)."""

    status = 502
    code = "upstream_error"


class UpstreamTimeout(UpstreamFailed):
    """The upstream provider did not answer in time."""

    status = 504
    code = "upstream_timeout"
