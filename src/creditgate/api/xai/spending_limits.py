"""GET and POST /v1/billing/teams/{team_id}/postpaid/spending-limits (contract 4.7 and 4.8):
the team's postpaid spending limits, and the customer's own (soft) limit.

`hardSlAuto` is the operator's hard limit, `effectiveHardSl` the same (creditgate has no staff
override, so `hardSlOverride` is never emitted), `softSl` the customer's limit (left out when
never set), `effectiveSl` the lower of the two (the hard limit when no soft limit was set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.state import services
from creditgate.api.xai.openapi import doc
from creditgate.api.xai.protojson import MESSAGE, STRING, F
from creditgate.api.xai.types import Cent
from creditgate.api.xai.wire import TEAMS, no_team, read_message, render, team_access
from creditgate.errors import NotFound, ValidationError
from creditgate.limits.postpaid import PostpaidLimits
from creditgate.money import to_whole_cents
from creditgate.workflows import spending_limits

router = APIRouter()
PATH = TEAMS + "/postpaid/spending-limits"
DESIRED = "desiredSoftSpendingLimit"
SET_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        DESIRED: {
            "type": "object",
            "properties": {"val": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        }
    },
}


@dataclass
class SpendingLimits:
    hard_sl_override: Cent | None = None
    hard_sl_auto: Cent | None = None
    effective_hard_sl: Cent | None = None
    soft_sl: Cent | None = None
    effective_sl: Cent | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("hard_sl_override", MESSAGE, Cent, optional=True),
        F("hard_sl_auto", MESSAGE, Cent),
        F("effective_hard_sl", MESSAGE, Cent),
        F("soft_sl", MESSAGE, Cent, optional=True),
        F("effective_sl", MESSAGE, Cent),
    )


@dataclass
class GetSpendingLimitsResp:
    spending_limits: SpendingLimits | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (F("spending_limits", MESSAGE, SpendingLimits),)


@dataclass
class SetSoftSpendingLimitReq:
    team_id: str = ""  # the path's team wins (contract 2.4)
    desired_soft_spending_limit: Cent | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (
        F("team_id", STRING),
        F("desired_soft_spending_limit", MESSAGE, Cent),
    )


@dataclass
class SetSoftSpendingLimitResp:
    this_bp_soft_spending_limit: Cent | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (F("this_bp_soft_spending_limit", MESSAGE, Cent),)


def _cent(units: int) -> Cent:
    return Cent(to_whole_cents(units))


def limits_message(limits: PostpaidLimits) -> SpendingLimits:
    hard = _cent(limits.hard)
    return SpendingLimits(
        hard_sl_auto=hard,
        effective_hard_sl=hard,
        soft_sl=None if limits.soft is None else _cent(limits.soft),
        effective_sl=_cent(limits.effective),
    )


@router.get(PATH, **doc("Get the postpaid spending limits", response=GetSpendingLimitsResp))
async def get_spending_limits(request: Request, team_id: str) -> Response:
    await team_access(request, team_id, "read")
    try:
        limits = await spending_limits.get_limits(services(request), team_id)
    except NotFound:
        raise no_team(team_id) from None
    return render(GetSpendingLimitsResp(limits_message(limits)))


@router.post(
    PATH,
    **doc(
        "Set the soft (customer's own) postpaid spending limit",
        body=SET_BODY,
        response=SetSoftSpendingLimitResp,
    ),
)
async def set_soft_spending_limit(request: Request, team_id: str) -> Response:
    """`0` means prepaid only; the limit may not be negative nor above `effectiveHardSl`."""
    await team_access(request, team_id, "write")
    body: SetSoftSpendingLimitReq = await read_message(request, SetSoftSpendingLimitReq)
    if body.desired_soft_spending_limit is None:
        raise ValidationError(f"{DESIRED} is required", field=DESIRED)
    try:
        limits = await spending_limits.set_soft_limit(
            services(request), team_id, body.desired_soft_spending_limit.val
        )
    except NotFound:
        raise no_team(team_id) from None
    except ValidationError as exc:
        raise ValidationError(f"{DESIRED}.val: {exc.message}", field=f"{DESIRED}.val") from exc
    assert limits.soft is not None
    return render(SetSoftSpendingLimitResp(_cent(limits.soft)))
