"""The Jinja2 environment of the portal and console: autoescaped HTML from the package's
templates, with filters that show money exactly and times as `<time>` elements."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from creditgate.money import UNITS_PER_CENT, UNITS_PER_USD
from creditgate.web import flash
from creditgate.web.security import csrf_field_value

STATIC_URL = "/web/static"


def money(units: int | None, currency: str = "usd") -> str:
    """Ledger units as currency, exactly: "$1,234.50", "-$0.000125" (never rounded)."""
    if units is None:
        return "—"
    value = Decimal(abs(int(units))) / UNITS_PER_USD
    text = format(value.quantize(Decimal(1).scaleb(-9)), "f").rstrip("0")
    whole, _, frac = text.partition(".")
    symbol = "$" if currency.lower() == "usd" else currency.upper() + " "
    return f"{'-' if units < 0 else ''}{symbol}{int(whole):,}.{frac.ljust(2, '0')}"


def cents(amount: int | None, currency: str = "usd") -> str:
    """Whole cents (invoices, top-ups, auto top-up settings) as currency."""
    return money(None if amount is None else amount * UNITS_PER_CENT, currency)


def dollars_input(amount_cents: int | None) -> str:
    """Whole cents as a plain dollar figure for an input's value ("25.00")."""
    if amount_cents is None:
        return ""
    return cents(amount_cents).replace("$", "").replace(",", "")


def when(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> Markup:
    """A `<time>` in UTC; the page's script shows it in the browser's zone, UTC on hover."""
    if moment is None:
        return Markup("—")
    utc = moment.astimezone(UTC)
    text = utc.strftime(fmt) + " UTC"
    return Markup('<time datetime="{0}" title="{1}">{1}</time>').format(
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"), text
    )


def day(moment: datetime | None) -> Markup:
    return when(moment, "%Y-%m-%d")


def static(name: str) -> str:
    return f"{STATIC_URL}/{escape(name)}"


env = Environment(
    loader=PackageLoader("creditgate.web", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(money=money, cents=cents, when=when, day=day, dollars_input=dollars_input)
env.globals.update(static=static)


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page. Every page gets the signed-in session (or None), the CSRF token for its
    forms, the flash messages waiting for it and the current path."""
    web = getattr(request.state, "web", None)
    messages = flash.pop(request)
    page = env.get_template(template).render(
        request=request,
        web=web,
        csrf_token=csrf_field_value(request),
        flashes=messages,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})
    if messages:
        flash.clear(response)
    return response
