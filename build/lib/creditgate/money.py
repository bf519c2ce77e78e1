"""Integer money. One scale for every amount: 1 USD = 10**9 units (nano-dollars).

A 10-token call at $0.10 per million tokens costs exactly 1,000 units, and int64 holds
about 9.2 billion dollars. Floats never touch an amount: Decimal is used only to parse
input and to render wire values, and every division goes through `div_round_half_up`.
"""

from __future__ import annotations

import re
from decimal import Decimal

UNITS_PER_USD = 10**9
UNITS_PER_CENT = 10**7
TOKENS_PER_RATE = 10**6  # catalog rates are per million tokens
MAX_UNITS = 2**63 - 1  # what a BIGINT column holds
# The largest magnitude of one ledger entry and of a balance: $1,000,000,000. It keeps every
# sum the service computes (a batch debit, a running balance) far inside a BIGINT.
MAX_AMOUNT = 10**18
MAX_DECIMAL_CHARS = 40
_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")

Units = int


def div_round_half_up(numerator: int, denominator: int) -> int:
    """The one rounding rule: integer division rounding halves away from zero."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return q if numerator >= 0 else -q


def parse_usd(text: str) -> Units:
    """Parse a plain decimal USD string ("0.0123", "-5", ".5") into units, exactly, with
    integer arithmetic only. No exponents, underscores or non-ASCII digits; at most 9
    decimal places (trailing zeros beyond that are fine). Raises ValueError."""
    if not isinstance(text, str):
        raise ValueError("must be a decimal string")
    s = text.strip()
    match = _DECIMAL.fullmatch(s) if len(s) <= MAX_DECIMAL_CHARS else None
    if match is None or not (match[2] or match[3]):
        raise ValueError('must be a decimal string such as "1.50"')
    sign, whole, frac = match[1], match[2] or "0", (match[3] or "").rstrip("0")
    if len(frac) > 9:
        raise ValueError("has more than 9 decimal places")
    units = int(whole) * UNITS_PER_USD + int(frac.ljust(9, "0"))
    if units > MAX_UNITS:
        raise ValueError("is too large")
    return -units if sign == "-" else units


def cents(amount_cents: int) -> Units:
    """Whole cents to units."""
    return amount_cents * UNITS_PER_CENT


def to_cents_number(units: Units) -> int | float:
    """Units to a JSON number of cents: an int when whole, else a float with up to 7 decimals."""
    whole, rest = divmod(units, UNITS_PER_CENT)
    if rest == 0:
        return whole
    return float(Decimal(units) / UNITS_PER_CENT)


def to_whole_cents(units: Units) -> int:
    """Units to whole cents, rounding halves away from zero (used for invoices and charges)."""
    return div_round_half_up(units, UNITS_PER_CENT)


def to_usd_string(units: Units) -> str:
    """Units to an exact decimal USD string without trailing zeros beyond cents ("1.50", "0.000001")."""
    value = Decimal(units) / UNITS_PER_USD
    text = format(value.quantize(Decimal(1).scaleb(-9)), "f").rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def usage_cost(
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int,
    input_rate: int,
    output_rate: int,
    cached_rate: int,
    request_fee: int,
) -> Units:
    """Price one call. Rates are units per million tokens; `cached_tokens` is the cached part
    of `input_tokens`, billed at `cached_rate` instead of `input_rate`. One rounding at the end."""
    uncached = input_tokens - cached_tokens
    numerator = uncached * input_rate + cached_tokens * cached_rate + output_tokens * output_rate
    return div_round_half_up(numerator, TOKENS_PER_RATE) + request_fee
