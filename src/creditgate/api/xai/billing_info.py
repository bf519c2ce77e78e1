"""GET and POST /v1/billing/teams/{team_id}/billing-info (contract 4.1 and 4.2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.state import services
from creditgate.api.xai import types
from creditgate.api.xai.billing import Empty, GetBillingInfoResp, SetBillingInfoReq
from creditgate.api.xai.openapi import BILLING_INFO_BODY, doc
from creditgate.api.xai.wire import TEAMS, read_message, render, team_access
from creditgate.billing.billing_info import BillingInfo
from creditgate.errors import ValidationError
from creditgate.workflows import billing_info as save
from creditgate.workflows import xai_reads

router = APIRouter()


def _camel(path: str) -> str:
    return ".".join(types.camel(part) for part in path.split("."))


def info_message(info: BillingInfo | None) -> types.BillingInfo | None:
    """The stored record in xAI's shape: "" for what was not given; no address when none of
    its fields was given."""
    if info is None:
        return None
    a = info.address
    address = None
    if any((a.line1, a.line2, a.city, a.country, a.postal_code, a.state)):
        address = types.Address(
            a.line1 or "", a.line2 or "", a.city or "", a.country or "", a.postal_code or "", a.state or ""
        )
    return types.BillingInfo(
        info.name, address, info.email or "", info.tax_id_type or "", info.tax_number or ""
    )


def fields_of(message: types.BillingInfo) -> dict[str, Any]:
    """The wire record as the billing-info domain reads it. Stripe's tax id types use `_`;
    the `-` spelling of one docs example ("us-ein") is read as `_`."""
    a = message.address or types.Address()
    return {
        "name": message.name,
        "email": message.email,
        "address": {
            "line1": a.line1,
            "line2": a.line2,
            "city": a.city,
            "state": a.state,
            "postal_code": a.postal_code,
            "country": a.country,
        },
        "tax_id_type": message.tax_id_type.replace("-", "_"),
        "tax_number": message.tax_number,
    }


@router.get(TEAMS + "/billing-info", **doc("Get billing information", response=GetBillingInfoResp))
async def get_billing_info(request: Request, team_id: str) -> Response:
    await team_access(request, team_id, "read")
    info = await xai_reads.team_billing_info(services(request), team_id)
    return render(GetBillingInfoResp(info_message(info)))


@router.post(
    TEAMS + "/billing-info", **doc("Set billing information", body=BILLING_INFO_BODY, response=Empty)
)
async def set_billing_info(request: Request, team_id: str) -> Response:
    await team_access(request, team_id, "write")
    body: SetBillingInfoReq = await read_message(request, SetBillingInfoReq)
    if body.billing_info is None:
        raise ValidationError("billingInfo is required", field="billingInfo")
    try:
        await save.set_billing_info(services(request), team_id, fields_of(body.billing_info))
    except ValidationError as exc:
        field = f"billingInfo.{_camel(exc.field)}" if exc.field else "billingInfo"
        message = exc.message.replace(exc.field or "\0", field, 1)
        raise ValidationError(message, field=field) from exc
    return render(Empty())
