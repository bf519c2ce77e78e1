"""Token table. Accounts themselves live in the ledger domain, next to their balance."""

from sqlalchemy import Column, ForeignKey, String, Table

from creditgate.db.metadata import metadata
from creditgate.db.types import UTCDateTime

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("scope", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("name", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", String(64), primary_key=True),  # keys are per account, as Stripe's are
    Column("scope", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", String(3), nullable=False),
    Column("response", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The billing portal (creditgate.web): one-time links an operator hands to a customer, and the
# browser sessions they (or a token, or the operator) open. Only SHA-256 hashes are stored.
portal_links = Table(
    "portal_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("return_url", String(500), nullable=True),  # the operator's page the portal links back to
)

portal_sessions = Table(
    "portal_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    # None for an operator session (the console)
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=True, index=True),
    Column("scope", String(16), nullable=False),  # write | read | operator
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("return_url", String(500), nullable=True),
)
