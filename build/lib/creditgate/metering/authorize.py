"""The gateway's authorize and settle, where pricing meets enforcement.

Authorize prices the worst case from the catalog (every input token uncached, every output
token used) unless the gateway sends its own estimate, then asks limits to hold it. Settling
is in metering/settle.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.errors import ValidationError
from creditgate.ids import is_valid_account_id
from creditgate.limits import service as limits
from creditgate.metering.catalog import PriceCatalog
from creditgate.metering.events import MAX_METADATA_BYTES, MAX_TOKENS
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
