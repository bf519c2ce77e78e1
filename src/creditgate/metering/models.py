"""Metering tables: the price catalog, the event ids seen (deduplication), the raw usage
events and their rollups.

`usage_event_ids` is the deduplication key: ingest stores an event only when its (account,
id) is new there, and a job prunes ids received longer ago than the deduplication horizon
(docs/scaling.md, "Partitions and retention"). `usage_events` holds the raw events; on
PostgreSQL it is partitioned by month of `occurred_at` (a partition per month and a DEFAULT
one, created by migration 0019 and the `usage_partitions` job, metering/partitions.py), so
its key must include `occurred_at`, and whole months of raw events can be dropped after the
retention period. The rollups are kept forever.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
)

from creditgate.db.metadata import metadata
from creditgate.db.types import BigIntPK, Json, UTCDateTime

prices = Table(
    "prices",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("provider", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("effective_from", UTCDateTime, nullable=False),
    Column("input_rate", BigInteger, nullable=False),
    Column("output_rate", BigInteger, nullable=False),
    Column("cached_input_rate", BigInteger, nullable=False),
    Column("request_fee", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("provider", "model", "effective_from"),
)

usage_event_ids = Table(
    "usage_event_ids",
    metadata,
    # no foreign key: an id is claimed by the statement that stores its event, whose reference
    # to accounts is checked there (a second check per event cost ingest ~10 %)
    Column("account_id", String(64), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    # the horizon's prune. BRIN on PostgreSQL: ids arrive in received_at order, so a few bytes
    # per block range serve the range delete, where a B-tree would cost ingest one more index
    # insert per event
    Index("ix_usage_event_ids_received_at", "received_at", postgresql_using="brin"),
)

usage_events = Table(
    "usage_events",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("occurred_at", UTCDateTime, primary_key=True),  # the partition key (PostgreSQL)
    Column("provider", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("price_id", BigInteger, nullable=True),
    Column("hold_id", String(64), nullable=True),
    Column("metadata", Json, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("api_key_id", String(200), nullable=True),  # metadata.api_key_id
    Index("ix_usage_events_account_id_occurred_at", "account_id", "occurred_at"),
)

usage_rollups = Table(
    "usage_rollups",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("granularity", String(4), primary_key=True),
    Column("bucket_start", UTCDateTime, primary_key=True),
    Column("provider", String(64), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("api_key_id", String(200), primary_key=True),  # "" for usage reported without a key
    Column("events", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=False),
)
