"""Tax on invoices: the one rounding rule, in exact integer cents.

Amounts creditgate charges (top-ups, a postpaid statement's amount due) are tax-inclusive:
the customer pays exactly the amount asked, and the invoice shows how much of it is tax.
With a rate of r basis points, the tax in a gross amount g (cents) is

    tax = g * r / (10000 + r), rounded to the nearest cent, halves away from zero

and net = g - tax, so net + tax == g to the cent. A rate of 0 gives a tax line of 0.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_RATE_BPS = 10_000


@dataclass(frozen=True)
class TaxSplit:
    net: int  # cents
    tax: int  # cents
    gross: int  # cents: net + tax, exactly


def included_tax(gross_cents: int, rate_bps: int) -> int:
    """The tax contained in a tax-inclusive amount (see the module docstring)."""
    if not 0 <= rate_bps <= MAX_RATE_BPS:
        raise ValueError(f"a tax rate is 0 to {MAX_RATE_BPS} basis points")
    denominator = 10_000 + rate_bps
    quotient, remainder = divmod(abs(gross_cents) * rate_bps, denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if gross_cents >= 0 else -quotient


def split(gross_cents: int, rate_bps: int) -> TaxSplit:
    tax = included_tax(gross_cents, rate_bps)
    return TaxSplit(net=gross_cents - tax, tax=tax, gross=gross_cents)


def rate_text(rate_bps: int) -> str:
    """Basis points as a percentage: 2000 -> "20%", 1925 -> "19.25%", 550 -> "5.5%"."""
    whole, rest = divmod(rate_bps, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"
