"""Usage split into billing items by unit type: prompt, cached prompt and completion tokens,
and requests (the per-request fee). The split of a cost follows the catalog rates in force;
the parts of one aggregate always add up to its exact cost (largest remainder)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from creditgate.errors import ValidationError
from creditgate.metering.catalog import Price, PriceCatalog
from creditgate.money import TOKENS_PER_RATE, div_round_half_up

PROMPT = "Prompt text tokens"
CACHED = "Cached prompt text tokens"
COMPLETION = "Completion text tokens"
REQUESTS = "Requests"
UNIT_TYPES = (PROMPT, CACHED, COMPLETION, REQUESTS)
TOKEN_TYPES = (PROMPT, CACHED, COMPLETION)
# A catalog rate (ledger units per million tokens) in xAI's unit price, 1e-10 USD per token.
RATE_PER_UNIT_PRICE = 10**5


@dataclass(frozen=True)
class UnitPart:
    unit_type: str
    units: int  # tokens, or requests
    unit_price: int  # 1e-10 USD per unit at the catalog price; 0 without one
    cost: int  # ledger units


def price_at(catalog: PriceCatalog, provider: str, model: str, at: datetime) -> Price | None:
    """The catalog price in force at `at`, or None (usage that carried its own cost)."""
    try:
        return catalog.lookup(provider, model, at)
    except ValidationError:
        return None


def allocate(total: int, weights: list[int]) -> list[int]:
    """`total` in proportion to `weights` (not all zero), in integers that add up to it;
    leftover units go to the largest remainders, the first on a tie."""
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    rests = [total * w % whole for w in weights]
    for index in sorted(range(len(weights)), key=lambda i: (-rests[i], i))[: total - sum(shares)]:
        shares[index] += 1
    return shares


def split(
    price: Price | None, *, input_tokens: int, cached_tokens: int, output_tokens: int, events: int, cost: int
) -> list[UnitPart]:
    """One aggregate of usage as its unit-type parts (parts with no units and no cost left out)."""
    counts = [input_tokens - cached_tokens, cached_tokens, output_tokens, events]
    prices = [0, 0, 0, 0]
    weights = [0, 0, 0, 0]
    if price is not None:
        rates = [price.input_rate, price.cached_input_rate, price.output_rate]
        weights = [n * r for n, r in zip(counts, rates, strict=False)] + [
            events * price.request_fee * TOKENS_PER_RATE
        ]
        prices = [div_round_half_up(r, RATE_PER_UNIT_PRICE) for r in rates] + [price.request_fee * 10]
    if not any(weights):
        weights = [*counts[:3], 0] if any(counts[:3]) else [0, 0, 0, 1]
    shares = allocate(cost, weights) if cost else [0, 0, 0, 0]
    parts = []
    for unit_type, units, unit_price, share, weight in zip(
        UNIT_TYPES, counts, prices, shares, weights, strict=True
    ):
        if unit_type == REQUESTS and not (weight or share):
            continue
        if units or share:
            parts.append(UnitPart(unit_type, units, unit_price, share))
    return parts
