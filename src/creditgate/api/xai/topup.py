"""POST /v1/billing/teams/{team_id}/prepaid/top-up (contract 4.10), the RPC
TopUpOrGetExistingPendingChange: buy prepaid credit with the default card, or get the top-up
still waiting for its charge. The answer is the PURCHASE change, credit negative."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from creditgate.api.state import services
from creditgate.api.xai.balance import change
from creditgate.api.xai.billing import PrepaidBalanceChange
from creditgate.api.xai.openapi import TOP_UP_BODY, doc
from creditgate.api.xai.protojson import MESSAGE, F
from creditgate.api.xai.types import Cent
from creditgate.api.xai.wire import TEAMS, read_message, render, team_access
from creditgate.errors import ValidationError
from creditgate.workflows import topup

router = APIRouter()
MAX_KEY = 255  # Idempotency-Key, as on the Cloudflare API


@dataclass
class TopUpOrGetExistingPendingChangeReq:
    amount: Cent | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (F("amount", MESSAGE, Cent),)


@dataclass
class TopUpOrGetExistingPendingChangeResp:
    change: PrepaidBalanceChange | None = None
    FIELDS: ClassVar[tuple[F, ...]] = (F("change", MESSAGE, PrepaidBalanceChange),)


def _request_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_KEY:
        raise ValidationError(f"Idempotency-Key must be 1 to {MAX_KEY} characters", field="Idempotency-Key")
    return key


@router.post(
    TEAMS + "/prepaid/top-up",
    **doc(
        "Top up prepaid credit",
        body=TOP_UP_BODY,
        errors=(402, 409, 503),
        response=TopUpOrGetExistingPendingChangeResp,
    ),
)
async def top_up(request: Request, team_id: str) -> Response:
    await team_access(request, team_id, "write")
    body: TopUpOrGetExistingPendingChangeReq = await read_message(request, TopUpOrGetExistingPendingChangeReq)
    if body.amount is None:
        raise ValidationError("amount is required", field="amount")
    try:  # "Can be any integer and we will disregard the sign"
        found = await topup.top_up_or_get_pending(
            services(request), team_id, abs(body.amount.val), request_key=_request_key(request)
        )
    except ValidationError as exc:
        if exc.field != "amount":
            raise
        raise ValidationError(exc.message.replace("amount", "amount.val", 1), field="amount.val") from exc
    return render(TopUpOrGetExistingPendingChangeResp(change(team_id, found.change, found.processor)))
