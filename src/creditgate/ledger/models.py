"""Ledger tables: accounts carry the cached balance; entries are append-only."""

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from creditgate.db.metadata import metadata
from creditgate.db.serial import serial
from creditgate.db.types import UTCDateTime

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("mode", String(16), nullable=False),
    # Postpaid spending limits (limits/postpaid.py), ledger units: the operator's ceiling
    # (xAI hardSlAuto; 0 = prepaid only) and the customer's own limit (softSl; NULL = never set).
    Column("postpaid_hard_limit", BigInteger, nullable=False),
    Column("postpaid_soft_limit", BigInteger, nullable=True),
    Column("balance", BigInteger, nullable=False),
    Column("held", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Keyed (id, account_id) (the account in every key, for sharding by account; ids from
# db.serial, in insert order); (account_id, id) pages an account's entries.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigInteger, nullable=False, default=serial("ledger_entries")),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("ref", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("id", "account_id"),
    UniqueConstraint("account_id", "ref"),
    Index("ix_ledger_entries_account_id_id", "account_id", "id"),
)

# Finds expiring grants without scanning the ledger; only grants with an expiry are indexed.
Index(
    "ix_ledger_entries_expires_at",
    ledger_entries.c.expires_at,
    postgresql_where=ledger_entries.c.expires_at.is_not(None),
    sqlite_where=ledger_entries.c.expires_at.is_not(None),
)

# Usage accepted by ingest but not yet applied: one row per (store transaction, account, UTC
# hour, provider, model, api key), summed. The usage applier (metering/applier.py) deletes rows and
# posts their debit, rollups and spend in one transaction, so an account's balance is always
# its cached balance minus its pending cost (ledger.repository reads it so; authorize counts it
# too). Rows live for about the applier's lag, so the account index stays small. Keyed
# (id, account_id): the applier takes the oldest ids first.
usage_pending = Table(
    "usage_pending",
    metadata,
    Column("id", BigInteger, nullable=False, default=serial("usage_pending")),
    # no foreign key: rows are only written by the statement that stores their events, whose
    # own reference to accounts is checked there (a second check per row cost ingest ~8 %)
    Column("account_id", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),  # the store transaction's clock
    Column("bucket_start", UTCDateTime, nullable=False),  # the events' UTC hour
    Column("provider", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("api_key_id", String(200), nullable=False),  # "" for usage without a key
    Column("events", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=False),
    PrimaryKeyConstraint("id", "account_id"),
    Index("ix_usage_pending_account_id", "account_id"),
)
