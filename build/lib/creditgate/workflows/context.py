"""What every workflow needs, built once per process and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from creditgate.clock import Clock, system_clock
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.errors import ServiceUnavailable
from creditgate.metering.catalog import PriceCatalog
from creditgate.payments.gateway import CardProcessor


@dataclass
class Context:
    """The process's database, clock, price catalog and card processor."""

    settings: Settings
    db: Database
    catalog: PriceCatalog = field(default_factory=PriceCatalog)
    clock: Clock = system_clock
    extras: dict[str, Any] = field(default_factory=dict)  # to be replaced by explicit fields
    processor: CardProcessor | None = None  # chosen by settings.payments (payments.factory)

    def require_processor(self) -> CardProcessor:
        """The configured card processor, or 503 when there is none."""
        if self.processor is None:
            raise ServiceUnavailable("no card processor is configured")
        return self.processor
