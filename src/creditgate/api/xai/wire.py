"""The xAI Management API's edge: team ids, management keys, google.rpc.Status errors, and
rendering a message as protojson."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from creditgate.accounts.principal import Principal
from creditgate.api.auth import principal
from creditgate.api.errors import register_renderer
from creditgate.api.responses import JSON, read_body, read_json
from creditgate.api.xai.protojson import decode, encode
from creditgate.errors import (
    AuthenticationError,
    Conflict,
    CreditgateError,
    FailedPrecondition,
    NotFound,
    PaymentFailed,
    PermissionDenied,
    ServiceUnavailable,
    ValidationError,
)

TEAMS = "/v1/billing/teams/{team_id}"
PREFIXES = ("/v1/billing/teams/", "/v1/billing/teams", "/auth/management-keys")
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

# google.rpc.Code numbers for the statuses creditgate answers with.
GRPC_CODES = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    402: 9,  # FAILED_PRECONDITION
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    405: 12,  # UNIMPLEMENTED
    409: 10,  # ABORTED
    413: 3,
    415: 3,
    429: 8,  # RESOURCE_EXHAUSTED
    500: 13,  # INTERNAL
    503: 14,  # UNAVAILABLE
}
_BY_CLASS: tuple[tuple[type[CreditgateError], int], ...] = (
    (FailedPrecondition, 9),
    (ValidationError, 3),
    (AuthenticationError, 16),
    (PermissionDenied, 7),
    (NotFound, 5),
    (Conflict, 10),
    (PaymentFailed, 9),
    (ServiceUnavailable, 14),
)


def render_error(_request: Request, status: int, exc: CreditgateError) -> Response:
    """google.rpc.Status JSON: {"code": <gRPC code>, "message": ..., "details": []}."""
    code = GRPC_CODES.get(status, 2)  # 2 = UNKNOWN
    for cls, grpc_code in _BY_CLASS:
        if isinstance(exc, cls) and status == exc.status:
            code = grpc_code
            break
    message = exc.message if exc.code != "no_route" else "Not Found"
    return JSON({"code": code, "message": message, "details": []}, status_code=status)


for _prefix in PREFIXES:
    register_renderer(_prefix, render_error)


def render(message: Any, status: int = 200) -> Response:
    """A message as protojson."""
    return JSON(encode(message), status_code=status)


def no_team(team_id: str) -> NotFound:
    """The one answer for a team that does not exist and a team the key cannot see."""
    return NotFound(f"team {team_id} not found")


def check_team_id(team_id: str) -> str:
    """A team id is a UUID in its 8-4-4-4-12 form; anything else ("default") is a 400."""
    if not _UUID.fullmatch(team_id):
        raise ValidationError("Invalid uuid", field="team_id")
    return team_id


async def team_access(request: Request, team_id: str, action: str) -> str:
    """Authenticate the management key (a creditgate token sent as Bearer) for `action`
    ("read" or "write") on the team; a foreign team answers as a missing one (404)."""
    caller: Principal = await principal(request)
    check_team_id(team_id)
    if not caller.is_operator and caller.account_id != team_id:
        raise no_team(team_id)
    caller.require(action, team_id)
    return team_id


async def read_message(request: Request, cls: type[Any]) -> Any:
    """The JSON body decoded leniently into `cls`; an empty body is an empty message."""
    body = await read_body(request)
    if not body.strip():
        return cls()
    return decode(cls, await read_json(request))
