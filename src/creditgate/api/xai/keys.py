"""GET /auth/management-keys/validation: which team a management key belongs to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.accounts.principal import Principal
from creditgate.api.auth import principal
from creditgate.api.responses import JSON
from creditgate.api.xai.openapi import doc
from creditgate.errors import PermissionDenied

router = APIRouter()
# creditgate token scope -> the xAI ACLs it amounts to
ACLS = {"read": ["BillingRead"], "write": ["BillingRead", "BillingWrite"], "gateway": []}
_STRING = {"type": "string"}
VALIDATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "teamId": _STRING,
        "scopeId": _STRING,
        "scope": {"type": "string", "enum": ["SCOPE_TEAM"]},
        "apiKeyId": _STRING,
        "acls": {"type": "array", "items": _STRING},
    },
    "required": ["teamId", "scopeId", "scope", "apiKeyId", "acls"],
    "additionalProperties": False,
}


@router.get(
    "/auth/management-keys/validation", **doc("The team of a management key", team=False, response=VALIDATION)
)
async def validate_key(request: Request) -> Response:
    """The key's team, as clients that discover their team expect (contract section 2.2)."""
    caller: Principal = await principal(request)
    if caller.account_id is None:
        raise PermissionDenied("the operator token belongs to no team; use a token of the team")
    team = caller.account_id
    body = {
        "teamId": team,
        "scopeId": team,
        "scope": "SCOPE_TEAM",
        "apiKeyId": caller.token_id or "",
        "acls": ACLS.get(caller.scope, []),
    }
    return JSON(body)
