"""Spending-limit configuration (one limit per account, as the Cloudflare API exposes), holds,
and the window-spend state that enforcement reads."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    text,
)

from creditgate.db.metadata import metadata
from creditgate.db.types import Json, UTCDateTime

spending_limits = Table(
    "spending_limits",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("duration", String(8), nullable=False),
    Column("strategy", String(8), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per authorize that was granted. `amount` stays in accounts.held while status is open.
# Keyed (id, account_id): the account is in the key (sharding by account), and a settle that
# knows only the hold id still finds it by the key's first column.
holds = Table(
    "holds",
    metadata,
    Column("id", String(40), nullable=False),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("request_id", String(200), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(8), nullable=False),  # open | settled | voided | expired
    Column("model", String(200), nullable=True),
    Column("provider", String(64), nullable=True),
    Column("metadata", Json, nullable=True),
    Column("remaining_credit", BigInteger, nullable=False),
    Column("remaining_limit", BigInteger, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("captured", BigInteger, nullable=True),
    Column("overrun", BigInteger, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("event_id", String(200), nullable=True),
    PrimaryKeyConstraint("id", "account_id"),
    UniqueConstraint("account_id", "request_id"),
    Index(
        "ix_holds_open_expires_at",
        "expires_at",
        postgresql_where=text("status = 'open'"),
        sqlite_where=text("status = 'open'"),
    ),
    Index(
        "ix_holds_open_account_id_expires_at",
        "account_id",
        "expires_at",
        postgresql_where=text("status = 'open'"),
        sqlite_where=text("status = 'open'"),
    ),
)

# Recorded (settled or hold-less) spend per account per UTC minute: the source of every window.
spend_buckets = Table(
    "spend_buckets",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("bucket_start", UTCDateTime, primary_key=True),
    Column("amount", BigInteger, nullable=False),
)

# A running sum of spend_buckets from `window_start` on, for the account's current limit.
limit_state = Table(
    "limit_state",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("duration", String(8), nullable=False),
    Column("strategy", String(8), nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_spend", BigInteger, nullable=False),
)
