"""POST /admin/v1/accounts/{id}/portal-sessions: a one-time billing portal link for a
customer, the way Stripe's customer portal sessions work (docs/portal.md)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.api.admin import operator
from creditgate.api.responses import JSON, read_body, read_object
from creditgate.api.schemas import admin as schema
from creditgate.api.schemas.common import operation
from creditgate.api.state import services
from creditgate.views import portal_link_view
from creditgate.workflows import portal

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(operator)])


@router.post(
    "/accounts/{account_id}/portal-sessions",
    **operation(
        ok=schema.PortalSession,
        status=201,
        body=schema.PortalSessionCreate,
        body_required=False,
        errors=[404],
    ),
)
async def create_portal_session(request: Request, account_id: str) -> Response:
    """A link that opens the account's portal once, before `expires_at`. Optional body:
    `{"return_url": "https://..."}`, the operator's page the portal links back to."""
    body = await read_object(request, allowed={"return_url"}) if await read_body(request) else {}
    link = await portal.create_link(services(request), account_id, return_url=body.get("return_url"))
    return JSON(portal_link_view(link), status_code=201)
