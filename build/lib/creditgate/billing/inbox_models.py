"""The incoming-webhook inbox: each processor event stored once, unique on its id."""

from sqlalchemy import Column, Index, Integer, String, Table, Text

from creditgate.db.metadata import metadata
from creditgate.db.types import Json, UTCDateTime

webhook_inbox = Table(
    "webhook_inbox",
    metadata,
    Column("processor", String(16), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("type", String(64), nullable=False),  # normalised (payment.succeeded, ...)
    Column("raw_type", String(128), nullable=False),  # the processor's own (payment_intent.succeeded)
    Column("object_id", String(255), nullable=True),
    Column("payment_id", String(255), nullable=True),
    Column("event", Json, nullable=False),  # the normalised event, to dispatch again after a failure
    # received -> processed | ignored | failed (retried by the webhook_inbox job)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Index("ix_webhook_inbox_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_webhook_inbox_payment_id", "payment_id"),
)
