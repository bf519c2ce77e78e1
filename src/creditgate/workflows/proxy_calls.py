"""One proxied model call: hold its worst case, then settle its true usage (or void it).

The proxy is one more front door onto `authorize.authorize` and `holds.settle` / `holds.void`,
acting as the account's gateway: the hold makes concurrent calls unable to overspend, and the
settlement charges exactly usage x price x (1 + markup), with one rounding (half up, to the
ledger unit). Per-model sell prices of an upstream are charged as they are, without markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from creditgate.accounts.principal import Principal
from creditgate.errors import InsufficientCredit, SpendingLimitReached
from creditgate.ids import new_id
from creditgate.money import TOKENS_PER_RATE, div_round_half_up, to_usd_string
from creditgate.workflows import authorize as authorizing
from creditgate.workflows import holds
from creditgate.workflows.upstreams import PPM, Route

if TYPE_CHECKING:
    from creditgate.workflows.context import Context

DEFAULT_MAX_OUTPUT_TOKENS = 16_384  # when neither the request nor the upstream model says
INPUT_BYTES_PER_TOKEN = 3  # worst-case input estimate: a token is rarely shorter than 3 bytes


@dataclass(frozen=True)
class Rates:
    """Units per million tokens, a request fee, and the markup in millionths."""

    input_rate: int
    output_rate: int
    cached_input_rate: int
    request_fee: int
    markup_ppm: int


@dataclass(frozen=True)
class Usage:
    input_tokens: int  # every input token, cached included
    output_tokens: int
    cached_tokens: int = 0
    estimated: bool = False  # counted by creditgate from the text sent, not told by the upstream


@dataclass
class Call:
    """An authorized call: its hold, and how it is priced."""

    account_id: str
    principal: Principal  # the account's gateway principal (what the hold belongs to)
    route: Route
    rates: Rates
    request_id: str
    hold_id: str
    amount: int
    input_estimate: int
    metadata: dict[str, Any] = field(default_factory=dict)


def charge(rates: Rates, usage: Usage) -> int:
    """usage x price x (1 + markup) in ledger units, rounded once (half up)."""
    cached = min(usage.cached_tokens, usage.input_tokens)
    tokens = (
        (usage.input_tokens - cached) * rates.input_rate
        + cached * rates.cached_input_rate
        + usage.output_tokens * rates.output_rate
    )
    scale = PPM + rates.markup_ppm
    return div_round_half_up(tokens * scale, TOKENS_PER_RATE * PPM) + div_round_half_up(
        rates.request_fee * scale, PPM
    )


def rates_of(ctx: Context, route: Route) -> Rates:
    """The route's sell prices: its own per-model prices, or the catalog's plus the markup."""
    if route.input_rate is not None and route.output_rate is not None:
        cached = route.cached_input_rate if route.cached_input_rate is not None else route.input_rate
        return Rates(route.input_rate, route.output_rate, cached, 0, 0)
    price = ctx.catalog.lookup(route.provider, route.upstream_model, ctx.clock())
    return Rates(
        price.input_rate, price.output_rate, price.cached_input_rate, price.request_fee, route.markup_ppm
    )


def estimate_input_tokens(body_bytes: int) -> int:
    """A worst-case input count from the request size (the JSON around the text counts too)."""
    return math.ceil(body_bytes / INPUT_BYTES_PER_TOKEN)


def estimate_output_tokens(text_bytes: int, deltas: int) -> int:
    """Tokens of text already streamed when the upstream never said: one per delta (providers
    stream about a token per delta), or a token per 4 bytes if that is more."""
    return max(deltas, math.ceil(text_bytes / 4))


def output_ceiling(route: Route, requested: int | None) -> int:
    """The most output the call may produce: the request's limit, else the model's maximum."""
    if requested is not None:
        return requested
    return route.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS


async def open_call(
    ctx: Context, account_id: str, route: Route, input_estimate: int, max_output: int, token_id: str | None
) -> Call:
    """Authorize the worst case (InsufficientCredit or SpendingLimitReached when denied)."""
    rates = rates_of(ctx, route)
    amount = charge(rates, Usage(input_estimate, max_output))
    gateway = Principal(account_id=account_id, scope="gateway", token_id=token_id)
    request_id = new_id("px")
    body = {
        "account_id": account_id,
        "request_id": request_id,
        "model": route.name,
        "provider": route.provider,
        "estimated_cost_usd": to_usd_string(amount),
        "metadata": {"proxy": True, "upstream_id": route.upstream_id},
    }
    decision = await authorizing.authorize(ctx, body, gateway)
    if not decision.allowed or decision.hold is None:
        if decision.reason == "spending_limit":
            raise SpendingLimitReached(
                "The account's spending limit leaves no room for this request.",
                retry_after_ms=decision.retry_after_ms,
            )
        raise InsufficientCredit(
            "You exceeded your current quota: the account's credit does not cover this request."
        )
    return Call(
        account_id, gateway, route, rates, request_id, decision.hold.id, decision.hold.amount, input_estimate
    )


async def close_call(ctx: Context, call: Call, usage: Usage | None, *, cut: str | None = None) -> int:
    """Settle the call's usage (or void the hold when nothing was generated). Returns the units
    charged. `cut` ("client_disconnect", "upstream_error") is recorded in the event metadata."""
    if usage is None:
        await holds.void(ctx, call.hold_id, call.principal)
        return 0
    cost = charge(call.rates, usage)
    metadata: dict[str, Any] = {
        "upstream_id": call.route.upstream_id,
        "upstream_model": call.route.upstream_model,
    }
    if call.principal.token_id:  # usage by key (a rollup dimension, xAI's api_key_id)
        metadata["api_key_id"] = call.principal.token_id
    if usage.estimated:
        metadata["estimated"] = True
    if cut:
        metadata["cut"] = cut
    body = {
        "model": call.route.name,
        "provider": call.route.provider,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": min(usage.cached_tokens, usage.input_tokens),
        "cost_usd": to_usd_string(cost),
        "metadata": metadata,
    }
    await holds.settle(ctx, call.hold_id, body, call.principal)
    return cost
