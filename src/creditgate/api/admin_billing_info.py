"""Operator endpoints for a customer's invoice billing info: GET/PUT /admin/v1/accounts/{id}/billing-info.

PUT replaces the whole record: `{"name", "email"?, "address"?: {"line1", "line2", "city",
"state", "postal_code", "country"}, "tax_id_type"?, "tax_number"?}`. It is printed on the
account's invoice PDFs as the buyer.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.api.admin import operator
from creditgate.api.responses import JSON, read_object
from creditgate.api.schemas import billing as schema
from creditgate.api.schemas.common import operation
from creditgate.api.state import services
from creditgate.errors import NotFound
from creditgate.workflows import billing_info

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(operator)])


@router.get("/accounts/{account_id}/billing-info", **operation(ok=schema.BillingInfo, errors=[404]))
async def get_billing_info(request: Request, account_id: str) -> Response:
    info = await billing_info.get_info(services(request), account_id)
    if info is None:
        raise NotFound(f"account {account_id!r} has no billing info; set it with PUT")
    return JSON(info.as_dict())


@router.put(
    "/accounts/{account_id}/billing-info",
    **operation(ok=schema.BillingInfo, body=schema.BillingInfoSet, errors=[404]),
)
async def put_billing_info(request: Request, account_id: str) -> Response:
    body = await read_object(request)
    info = await billing_info.set_billing_info(services(request), account_id, body)
    return JSON(info.as_dict())
