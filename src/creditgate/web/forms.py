"""Posted forms: read an urlencoded body (bounded), check its CSRF token, and offer typed
access to its fields with messages a customer understands."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from fastapi import Request

from creditgate.errors import PayloadTooLarge, ValidationError
from creditgate.money import UNITS_PER_CENT, parse_usd
from creditgate.web.security import CSRF_FIELD, check_csrf
from creditgate.web.sessions import WebSession

MAX_FORM_BYTES = 64 * 1024


class Form:
    """The fields of one posted form (the last value wins for repeated names)."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields

    def text(self, name: str, *, max_len: int = 500) -> str | None:
        """The stripped value, or None when empty; too long is a ValidationError."""
        value = self.fields.get(name, "").strip()
        if len(value) > max_len:
            raise ValidationError(
                f"{name.replace('_', ' ')} must be at most {max_len} characters", field=name
            )
        return value or None

    def required(self, name: str, label: str, *, max_len: int = 500) -> str:
        value = self.text(name, max_len=max_len)
        if value is None:
            raise ValidationError(f"Enter {label}.", field=name)
        return value

    def cents(self, name: str, label: str) -> int:
        """A dollar amount in whole cents (what top-ups, auto top-up and limits take)."""
        units = self.dollars(name, label)
        if units % UNITS_PER_CENT:
            raise ValidationError(f"{label.capitalize()} must be in whole cents.", field=name)
        return units // UNITS_PER_CENT

    def optional_cents(self, name: str, label: str) -> int | None:
        return None if self.text(name) is None else self.cents(name, label)

    def dollars(self, name: str, label: str) -> int:
        """A dollar amount typed by a person ("25", "25.50", "$1,000") as ledger units."""
        raw = self.required(name, label, max_len=40).replace(",", "").removeprefix("$").strip()
        try:
            units = parse_usd(raw)
        except ValueError:
            raise ValidationError(f"Enter {label} as a dollar amount such as 25.00.", field=name) from None
        if units <= 0:
            raise ValidationError(f"{label.capitalize()} must be more than zero.", field=name)
        return units

    def choice(self, name: str, label: str, options: tuple[str, ...]) -> str:
        value = self.required(name, label)
        if value not in options:
            raise ValidationError(f"Choose {label}: one of {', '.join(options)}.", field=name)
        return value


async def posted(request: Request) -> Form:
    """The posted form, once its CSRF token is checked against this browser's session
    (PermissionDenied otherwise). Call it after the session dependency has run."""
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise PayloadTooLarge("the form is too large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge("the form is too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("the form could not be read") from None
    fields = {name: values[-1] for name, values in parsed.items()}
    if any("\x00" in value for value in fields.values()):
        raise ValidationError("the form must not contain the NUL character")
    check_csrf(request, fields.get(CSRF_FIELD))
    return Form(fields)


_CENTS = re.compile(r"\b(\d+) and (\d+) cents\b|\b(\d+) cents\b")


def in_dollars(message: str) -> str:
    """A workflow's message about whole cents ("between 1000 and 100000000 cents"), as a
    person typing dollars reads it ("between $10.00 and $1,000,000.00")."""

    def dollars(cents: str) -> str:
        return f"${int(cents) // 100:,}.{int(cents) % 100:02d}"

    def replace(match: re.Match[str]) -> str:
        if match.group(3):
            return dollars(match.group(3))
        return f"{dollars(match.group(1))} and {dollars(match.group(2))}"

    return _CENTS.sub(replace, message)


async def change(request: Request, web: WebSession) -> Form:
    """A form that changes something: its CSRF token checked, and a read-only session refused."""
    form = await posted(request)
    web.require_write()
    return form
