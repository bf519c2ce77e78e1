"""Spending-limit configuration (one limit per account, as the Cloudflare API exposes)."""

from sqlalchemy import BigInteger, Column, ForeignKey, String, Table

from creditgate.db.metadata import metadata
from creditgate.db.types import UTCDateTime

spending_limits = Table(
    "spending_limits",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("duration", String(8), nullable=False),
    Column("strategy", String(8), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
