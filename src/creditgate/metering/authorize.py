"""The gateway's authorize and settle, where pricing meets enforcement.

Authorize prices the worst case from the catalog (every input token uncached, every output
token used) unless the gateway sends its own estimate, then asks limits to hold it. Settle
records the actual usage through the normal ingest path (so the ledger is debited exactly
once, deduplicated by event id) and closes the hold with the actual cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.errors import Conflict, ValidationError
from creditgate.ids import is_valid_account_id
from creditgate.limits import service as limits
from creditgate.metering import repository as repo
from creditgate.metering.catalog import PriceCatalog
from creditgate.metering.events import MAX_METADATA_BYTES, MAX_TOKENS
from creditgate.metering.service import ingest
from creditgate.money import UNITS_PER_USD, parse_usd, usage_cost

MAX_HOLD = 1_000_000 * UNITS_PER_USD  # per call; keeps every sum far inside int64

AUTHORIZE_FIELDS = frozenset(
    {
        "account_id",
        "request_id",
        "model",
        "provider",
        "max_input_tokens",
        "max_output_tokens",
        "estimated_cost_usd",
        "metadata",
    }
)


@dataclass(frozen=True)
class AuthorizeRequest:
    account_id: str
    request_id: str
    model: str
    provider: str | None
    max_input_tokens: int | None
    max_output_tokens: int | None
    estimate: int | None  # units, when the gateway sent estimated_cost_usd
    metadata: dict[str, Any] | None


def _text(raw: dict[str, Any], name: str, max_len: int, required: bool = True) -> str | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ValidationError(
            f"{name} must be a non-empty string of at most {max_len} characters", field=name
        )
    return value


def _tokens(raw: dict[str, Any], name: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise ValidationError(f"{name} must be an integer between 0 and {MAX_TOKENS}", field=name)
    return value


def parse_authorize(raw: Any) -> AuthorizeRequest:
    """Validate an authorize body; every error names its field."""
    if not isinstance(raw, dict):
        raise ValidationError("request body must be a JSON object", field="body")
    for key in raw:
        if key not in AUTHORIZE_FIELDS:
            raise ValidationError(f"{key} is not a known field", field=str(key))
    account_id = raw.get("account_id")
    if not is_valid_account_id(account_id):
        raise ValidationError("account_id must be a valid account id", field="account_id")
    request_id = _text(raw, "request_id", 200)
    model = _text(raw, "model", 200)
    provider = _text(raw, "provider", 64, required=False)
    max_in, max_out = _tokens(raw, "max_input_tokens"), _tokens(raw, "max_output_tokens")
    estimate = None
    if raw.get("estimated_cost_usd") is not None:
        text = raw["estimated_cost_usd"]
        if not isinstance(text, str):
            raise ValidationError(
                'estimated_cost_usd must be a decimal string such as "0.01"', field="estimated_cost_usd"
            )
        try:
            estimate = parse_usd(text)
        except ValueError as exc:
            raise ValidationError(f"estimated_cost_usd {exc}", field="estimated_cost_usd") from exc
        if estimate < 0:
            raise ValidationError("estimated_cost_usd must be >= 0", field="estimated_cost_usd")
    elif max_in is None and max_out is None:
        raise ValidationError(
            "send estimated_cost_usd, or max_input_tokens and/or max_output_tokens to price the worst case",
            field="estimated_cost_usd",
        )
    metadata = raw.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, dict) or len(orjson.dumps(metadata)) > MAX_METADATA_BYTES
    ):
        raise ValidationError(
            f"metadata must be a JSON object of at most {MAX_METADATA_BYTES} bytes", field="metadata"
        )
    assert isinstance(account_id, str) and request_id is not None and model is not None
    return AuthorizeRequest(account_id, request_id, model, provider, max_in, max_out, estimate, metadata)


def worst_case(req: AuthorizeRequest, catalog: PriceCatalog, now: datetime) -> tuple[int, str | None]:
    """(units, provider): the estimate, or the catalog price of the maximum token counts."""
    if req.estimate is not None:
        return req.estimate, req.provider or catalog.provider_for(req.model)
    price = catalog.lookup(req.provider, req.model, now)
    max_in, max_out = req.max_input_tokens or 0, req.max_output_tokens or 0
    cost = usage_cost(
        max_in, max_out, 0, price.input_rate, price.output_rate, price.cached_input_rate, price.request_fee
    )
    return cost, price.provider


def hold_request(
    req: AuthorizeRequest, catalog: PriceCatalog, now: datetime, *, ttl_seconds: int
) -> limits.HoldRequest:
    """Price a parsed request (the catalog must be fresh when it carries no estimate)."""
    amount, provider = worst_case(req, catalog, now)
    if amount > MAX_HOLD:
        field = "estimated_cost_usd" if req.estimate is not None else "max_output_tokens"
        raise ValidationError("one call may hold at most 1000000 USD", field=field)
    return limits.HoldRequest(
        account_id=req.account_id,
        request_id=req.request_id,
        amount=amount,
        now=now,
        ttl_seconds=ttl_seconds,
        model=req.model,
        provider=provider,
        metadata=req.metadata,
    )


def prepare(raw: Any, principal: Principal) -> AuthorizeRequest:
    """Parse an authorize body and check the caller may act for its account."""
    req = parse_authorize(raw)
    principal.require("gateway", req.account_id)
    return req


async def authorize(
    conn: AsyncConnection,
    raw: Any,
    principal: Principal,
    catalog: PriceCatalog,
    now: datetime,
    *,
    ttl_seconds: int,
) -> limits.Decision:
    """Parse, check the caller, price, and ask limits for a hold, in the caller's transaction."""
    req = prepare(raw, principal)
    if req.estimate is None:
        await catalog.refresh(conn)
    return await limits.authorize(conn, **hold_request(req, catalog, now, ttl_seconds=ttl_seconds).__dict__)


SETTLE_FIELDS = frozenset(
    {
        "id",
        "account_id",
        "model",
        "provider",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cost_usd",
        "timestamp",
        "metadata",
    }
)


@dataclass(frozen=True)
class Settlement:
    hold: limits.Hold
    replayed: bool


async def settle(
    conn: AsyncConnection,
    hold_id: str,
    raw: Any,
    principal: Principal,
    catalog: PriceCatalog,
    now: datetime,
) -> Settlement:
    """Record the actual usage (a usage event; `id` defaults to the hold's request_id, and
    account_id, model and provider to the hold's) and close the hold. Settling again with the
    same event id replays; another event id is a Conflict."""
    if not isinstance(raw, dict):
        raise ValidationError("request body must be a JSON object", field="body")
    for key in raw:
        if key not in SETTLE_FIELDS:
            raise ValidationError(f"{key} is not a known field", field=str(key))
    hold = await limits.lock_for_settle(conn, hold_id, principal)
    if raw.get("account_id") not in (None, hold.account_id):
        raise ValidationError("account_id does not match the hold's account", field="account_id")
    event = {"id": hold.request_id, "model": hold.model, **raw, "account_id": hold.account_id}
    if event.get("provider") is None and hold.provider is not None and "model" not in raw:
        event["provider"] = hold.provider
    if event.get("cost_usd") is not None:
        event.setdefault("input_tokens", 0)
        event.setdefault("output_tokens", 0)
    if hold.status == "settled":
        if event.get("id") != hold.event_id:
            raise Conflict(f"the hold was already settled by event {hold.event_id!r}", field="id")
        return Settlement(hold, replayed=True)
    result = await ingest(conn, [event], principal, catalog, now, hold_id=hold.id)
    if result.rejected:
        first = result.rejected[0]
        raise ValidationError(str(first["error"]), field=first.get("field"))
    event_id = str(event["id"])
    if result.accepted:
        captured = result.charged.get(hold.account_id, 0)
    else:  # the event id was already stored (reported as usage earlier): charge nothing again
        stored = await repo.list_events(conn, hold.account_id, limit=1, event_ids=[event_id])
        if stored and stored[0].hold_id not in (None, hold.id):
            raise Conflict(f"event {event_id!r} already settled another hold", field="id")
        captured = int(stored[0].cost) if stored else 0
    return Settlement(
        await limits.finish_settle(conn, hold, captured=captured, event_id=event_id, now=now), False
    )
