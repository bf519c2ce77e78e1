"""topup/config and spending-limit: get, set and delete an account's configuration."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.accounts.principal import Principal
from creditgate.api.auth import principal
from creditgate.api.cloudflare.common import BILLING, config_wire, ok, require_keys
from creditgate.api.responses import read_object
from creditgate.api.schemas import cloudflare as schema
from creditgate.api.schemas.common import operation
from creditgate.api.state import Services, services
from creditgate.errors import PermissionDenied
from creditgate.limits.config import SpendingLimit
from creditgate.money import to_cents_number
from creditgate.workflows import auto_topup, window_limits

router = APIRouter()


def _may_write_config(svc: Services, caller: Principal) -> None:
    """Cloudflare accepts auto top-up config writes from dashboard sessions only. Here API
    tokens may write unless CREDITGATE_TOPUP_CONFIG_API_WRITES=false; the operator always may."""
    if not svc.settings.topup_config_api_writes and not caller.is_operator:
        raise PermissionDenied(
            "auto top-up configuration cannot be changed with an API token on this server "
            "(CREDITGATE_TOPUP_CONFIG_API_WRITES=false)"
        )


@router.get(
    BILLING + "/topup/config", **operation(ok=schema.TopupConfigAnswer, wire="cloudflare", errors=[404])
)
async def get_topup_config(
    request: Request, account_id: str, caller: Principal = Depends(principal)
) -> Response:
    caller.require("read", account_id)
    return ok(config_wire(await auto_topup.get_config(services(request), account_id)))


@router.post(
    BILLING + "/topup/config",
    **operation(
        ok=schema.TopupConfigSavedAnswer, body=schema.TopupConfigSet, wire="cloudflare", errors=[404]
    ),
)
async def set_topup_config(
    request: Request, account_id: str, caller: Principal = Depends(principal)
) -> Response:
    caller.require("write", account_id)
    svc = services(request)
    _may_write_config(svc, caller)
    body = await read_object(request, allowed={"amount", "threshold"})
    require_keys(body, ("amount", "threshold"))
    state = await auto_topup.set_config(svc, account_id, amount=body["amount"], threshold=body["threshold"])
    return ok({"amount": state.config.amount, "threshold": state.config.threshold})


@router.delete(BILLING + "/topup/config", **operation(ok=schema.EmptyAnswer, wire="cloudflare", errors=[404]))
async def delete_topup_config(
    request: Request, account_id: str, caller: Principal = Depends(principal)
) -> Response:
    caller.require("write", account_id)
    svc = services(request)
    _may_write_config(svc, caller)
    await auto_topup.delete_config(svc, account_id)
    return ok({})


def _limit_wire(limit: SpendingLimit | None) -> dict[str, object]:
    if limit is None:
        return {"enabled": False, "config": {"amount": None, "duration": None, "strategy": None}}
    return {
        "enabled": True,
        "config": {
            "amount": to_cents_number(limit.amount),
            "duration": limit.duration,
            "strategy": limit.strategy,
        },
    }


@router.get(
    BILLING + "/spending-limit", **operation(ok=schema.SpendingLimitAnswer, wire="cloudflare", errors=[404])
)
async def get_spending_limit(
    request: Request, account_id: str, caller: Principal = Depends(principal)
) -> Response:
    caller.require("read", account_id)
    return ok(_limit_wire(await window_limits.get_limit(services(request), account_id)))


@router.post(
    BILLING + "/spending-limit",
    **operation(
        ok=schema.SpendingLimitAnswer,
        status=201,
        body=schema.SpendingLimitSet,
        wire="cloudflare",
        errors=[404],
    ),
)
async def set_spending_limit(
    request: Request, account_id: str, caller: Principal = Depends(principal)
) -> Response:
    """Deprecated on Cloudflare's live service (always 403); creditgate serves it as specified."""
    caller.require("write", account_id)
    body = await read_object(request, allowed={"amount", "duration", "strategy"})
    require_keys(body, ("amount", "duration", "strategy"))
    limit = await window_limits.set_limit(
        services(request),
        account_id,
        amount=body["amount"],
        duration=body["duration"],
        strategy=body["strategy"],
    )
    return ok(_limit_wire(limit), status=201)


@router.delete(
    BILLING + "/spending-limit", **operation(ok=schema.EmptyAnswer, wire="cloudflare", errors=[404])
)
async def delete_spending_limit(
    request: Request, account_id: str, caller: Principal = Depends(principal)
) -> Response:
    caller.require("write", account_id)
    await window_limits.delete_limit(services(request), account_id)
    return ok({})
