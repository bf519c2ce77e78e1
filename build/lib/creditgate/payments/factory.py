"""Pick the card processor named by `settings.payments`. The one place that knows them all."""

from __future__ import annotations

from creditgate.clock import Clock, system_clock
from creditgate.config import Settings
from creditgate.payments.gateway import CardProcessor
from creditgate.payments.sandbox import SandboxProcessor, Store

PROCESSORS = ("sandbox", "stripe")


def make_processor(settings: Settings, store: Store, clock: Clock = system_clock) -> CardProcessor:
    """The configured processor. `store` (the Database) holds the sandbox's state."""
    if settings.payments == "sandbox":
        return SandboxProcessor(store, clock)
    if settings.payments == "stripe":
        from creditgate.payments.stripe import StripeProcessor

        return StripeProcessor.from_settings(settings)
    raise ValueError(
        f"CREDITGATE_PAYMENTS={settings.payments!r} is not supported; choose one of: {', '.join(PROCESSORS)}"
    )
