"""Outgoing-webhook tables: endpoints, the event outbox, one delivery per (event, endpoint)
and every delivery attempt."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from creditgate.db.metadata import metadata
from creditgate.db.serial import serial
from creditgate.db.types import Json, UTCDateTime

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", String(2000), nullable=False),
    # "whsec_" + base64: needed in clear to sign; shown once at creation, never listed.
    Column("secret", String(120), nullable=False),
    Column("description", String(200), nullable=True),
    Column("event_types", Json, nullable=True),  # null = every event type
    Column("created_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
)

# Events, deliveries and attempts belong to the event's account: keyed (id, account_id) (the
# account in every key, for sharding by account; a lookup by id alone still uses the key), and
# each references its parent with the account.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(40), nullable=False),  # the webhook-id header, same on every retry
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the exact bytes signed and sent, fixed at emit time
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("id", "account_id"),
    Index("ix_webhook_events_account_id_created_at", "account_id", "created_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger, nullable=False, default=serial("webhook_deliveries")),
    Column("event_id", String(40), nullable=False),
    Column("endpoint_id", String(40), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("account_id", String(64), nullable=False),
    # pending -> delivering (leased) -> succeeded | pending (retry) | failed; canceled
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    # when it is due: the next try while pending, the lease's end while delivering
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("lease_token", String(40), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("id", "account_id"),
    ForeignKeyConstraint(["event_id", "account_id"], ["webhook_events.id", "webhook_events.account_id"]),
    UniqueConstraint("event_id", "endpoint_id", "account_id"),
    Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger, nullable=False, default=serial("webhook_attempts")),
    Column("account_id", String(64), nullable=False),  # the delivery's
    Column("delivery_id", BigInteger, nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("endpoint_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("succeeded", Boolean, nullable=False),
    Column("error", Text, nullable=True),
    PrimaryKeyConstraint("id", "account_id"),
    ForeignKeyConstraint(
        ["delivery_id", "account_id"], ["webhook_deliveries.id", "webhook_deliveries.account_id"]
    ),
    Index("ix_webhook_attempts_event_id", "event_id"),
)
