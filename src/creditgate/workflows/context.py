"""What every workflow needs, built once per process and passed explicitly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from creditgate.accounts.revocation import TokenCache
from creditgate.billing.inbox import Handlers
from creditgate.billing.inbox_handlers import billing_handlers
from creditgate.billing.parties import Seller, address_lines
from creditgate.clock import Clock, system_clock
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.errors import ServiceUnavailable
from creditgate.metering.catalog import PriceCatalog
from creditgate.payments.gateway import CardProcessor
from creditgate.workflows.authorize import AuthorizeBatcher, authorize_batcher
from creditgate.workflows.holds import SettleBatcher, settle_batcher
from creditgate.workflows.usage import UsageQueue, usage_queue


@dataclass
class Context:
    """The process's database, clock, price catalog, card processor and webhook handlers, and
    the batchers of the gateway's hot paths (built here, one each per process:
    workflows/batching.py)."""

    settings: Settings
    db: Database
    catalog: PriceCatalog = field(default_factory=PriceCatalog)
    clock: Clock = system_clock
    processor: CardProcessor | None = None  # chosen by settings.payments (payments.factory)
    # what the webhook inbox dispatches processor events to (billing's handlers)
    webhook_handlers: Handlers = field(default_factory=billing_handlers)
    seller: Seller = field(init=False)  # frozen into every invoice issued (billing.parties)
    usage_queue: UsageQueue = field(init=False, repr=False)  # group commit of usage reports
    authorize_batcher: AuthorizeBatcher = field(init=False, repr=False)
    settle_batcher: SettleBatcher = field(init=False, repr=False)
    tokens: TokenCache = field(init=False, repr=False)  # resolved tokens (accounts/revocation.py)
    # set after a usage report stored events: wakes the usage applier (workflows/apply_usage.py)
    usage_stored: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def __post_init__(self) -> None:
        self.seller = seller_of(self.settings)
        self.tokens = TokenCache(listened=not self.db.is_sqlite)
        self.usage_queue = usage_queue(self)
        self.authorize_batcher = authorize_batcher(self)
        self.settle_batcher = settle_batcher(self)

    def require_processor(self) -> CardProcessor:
        """The configured card processor, or 503 when there is none."""
        if self.processor is None:
            raise ServiceUnavailable("no card processor is configured")
        return self.processor


def seller_of(settings: Settings) -> Seller:
    """The seller identity and tax the settings configure (docs/invoices.md)."""
    return Seller(
        name=settings.seller_name,
        address=address_lines(settings.seller_address),
        tax_id=settings.seller_tax_id,
        tax_rate_bps=settings.tax_rate_bps,
        tax_name=settings.tax_name,
    )
