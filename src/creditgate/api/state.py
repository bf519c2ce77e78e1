"""What every request handler needs, built once per app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from creditgate.clock import Clock, system_clock
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.errors import ServiceUnavailable
from creditgate.metering.catalog import PriceCatalog
from creditgate.payments.gateway import CardProcessor


@dataclass
class Services:
    settings: Settings
    db: Database
    catalog: PriceCatalog = field(default_factory=PriceCatalog)
    clock: Clock = system_clock
    extras: dict[str, Any] = field(default_factory=dict)
    processor: CardProcessor | None = None  # chosen by settings.payments (payments.factory)


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def processor(request: Request) -> CardProcessor:
    """The configured card processor."""
    found = services(request).processor
    if found is None:
        raise ServiceUnavailable("no card processor is configured")
    return found
