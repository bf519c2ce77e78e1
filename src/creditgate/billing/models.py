"""Billing tables. Money here is whole cents (the unit cards are charged and invoices are
issued in); the ledger entry a paid top-up posts is in ledger units."""

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
    UniqueConstraint,
    text,
)

from creditgate.db.metadata import metadata
from creditgate.db.types import Json, UTCDateTime

billing_profiles = Table(
    "billing_profiles",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("processor", String(16), nullable=False),
    Column("customer_id", String(100), nullable=True),
    Column("default_payment_method_id", String(100), nullable=True),
    Column("brand", String(32), nullable=True),
    Column("last4", String(4), nullable=True),
    Column("first_topup_success", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

billing_cards = Table(
    "billing_cards",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("payment_method_id", String(100), primary_key=True),
    Column("brand", String(32), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=True),
    Column("exp_year", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# The per-account tables here are keyed (id, account_id): the account is in every key (sharding
# by account), and a lookup by id alone still uses the key. References between them carry the
# account too (rows that reference each other live on one shard).
invoices = Table(
    "invoices",
    metadata,
    Column("id", String(40), nullable=False),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("number", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # draft|open|paid|uncollectible|void
    Column("origin", String(16), nullable=False),  # manual|auto|statement
    Column("currency", String(3), nullable=False),
    Column("amount_due", BigInteger, nullable=False),  # cents
    Column("amount_paid", BigInteger, nullable=False),  # cents
    Column("description", String(500), nullable=True),
    Column("attempt_count", Integer, nullable=False),
    Column("pdf_key", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime, nullable=True),
    # seller, tax and buyer frozen at issue (billing/parties.py); NULL on invoices issued before
    Column("parties", Json, nullable=True),
    PrimaryKeyConstraint("id", "account_id"),
    UniqueConstraint("account_id", "number"),
    Index("ix_invoices_account_id_created_at", "account_id", "created_at"),
)

topups = Table(
    "topups",
    metadata,
    Column("id", String(40), nullable=False),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("invoice_id", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),  # cents
    Column("currency", String(3), nullable=False),
    Column("origin", String(8), nullable=False),
    Column("status", String(16), nullable=False),  # created|pending|completed|failed
    Column("customer_id", String(100), nullable=False),
    Column("payment_method_id", String(100), nullable=False),
    Column("requested_method", String(100), nullable=True),  # payment_method_id as sent, if any
    Column("request_key", String(255), nullable=True),  # the caller's Idempotency-Key
    Column("payment_id", String(100), nullable=True),
    Column("client_secret", String(200), nullable=True),
    Column("failure_code", String(64), nullable=True),
    Column("failure_message", String(500), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    # charge attempts (auto top-ups: the job's lease on the charge call; 0006_autotopup)
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("first_attempt_at", UTCDateTime, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("id", "account_id"),
    ForeignKeyConstraint(["invoice_id", "account_id"], ["invoices.id", "invoices.account_id"]),
    UniqueConstraint("invoice_id", "account_id"),
    UniqueConstraint("account_id", "request_key"),
    Index("ix_topups_account_id_created_at", "account_id", "created_at"),
    Index("ix_topups_payment_id", "payment_id"),
    Index(
        "uq_topups_one_auto_in_flight",
        "account_id",
        unique=True,
        sqlite_where=text("origin = 'auto' AND status = 'created'"),
        postgresql_where=text("origin = 'auto' AND status = 'created'"),
    ),
)

auto_topup_configs = Table(
    "auto_topup_configs",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("amount", BigInteger, nullable=False),  # cents
    Column("threshold", BigInteger, nullable=False),  # cents
    Column("error", String(500), nullable=True),
    Column("disabled_reason", String(500), nullable=True),
    Column("last_failed_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # the state machine (billing.autotopup_state; 0006_autotopup)
    Column("monthly_cap", BigInteger, nullable=True),  # cents of auto top-ups per UTC month
    Column("failures", Integer, nullable=False, server_default="0"),  # consecutive declines
    Column("next_attempt_at", UTCDateTime, nullable=True),  # backoff or cap: not before this
    Column("pending_topup_id", String(40), nullable=True),  # the one charge in flight
    Column("disabled_code", String(32), nullable=True),  # failures|authentication_required|no_card
    Column("low_since", UTCDateTime, nullable=True),  # balance.low sent; cleared on recovery
)

topup_refunds = Table(
    "topup_refunds",
    metadata,
    Column("id", String(40), nullable=False),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("topup_id", String(40), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),  # cents
    Column("status", String(16), nullable=False),  # created|pending|succeeded|failed
    Column("processor_refund_id", String(100), nullable=True),
    Column("reason", String(500), nullable=True),
    Column("request_key", String(255), nullable=True),  # the caller's Idempotency-Key
    Column("failure_message", String(500), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("id", "account_id"),
    ForeignKeyConstraint(["topup_id", "account_id"], ["topups.id", "topups.account_id"]),
    UniqueConstraint("account_id", "processor_refund_id"),
    UniqueConstraint("account_id", "request_key"),
)

statements = Table(
    "statements",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("invoice_id", String(40), nullable=True),
    Column("mode", String(16), nullable=False),  # the account's mode when closed
    Column("total", BigInteger, nullable=False),  # ledger units: this month's usage + late usage
    Column("late", BigInteger, nullable=False),  # units of earlier months reported after their close
    Column("credits", BigInteger, nullable=False),  # units covered by prepaid credit
    Column("due", BigInteger, nullable=False),  # units not covered (postpaid only)
    Column("lines", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # ledger units of usage posted in the month (the SPEND change is usage - due); NULL for
    # months closed before migration 0013
    Column("usage", BigInteger, nullable=True),
    PrimaryKeyConstraint("account_id", "period_start"),
    ForeignKeyConstraint(["invoice_id", "account_id"], ["invoices.id", "invoices.account_id"]),
    UniqueConstraint("invoice_id", "account_id"),
)

# Card charges of monthly (statement) invoices with an amount due, one row per attempt
# (xAI `chargerAttempts`): tickets from 0; the processor is called under the idempotency key
# `statement:<invoice id>:<ticket>` between two commits, so an attempt never charges twice.
statement_charges = Table(
    "statement_charges",
    metadata,
    Column("invoice_id", String(40), nullable=False),
    Column("ticket", Integer, nullable=False),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("payment_method_id", String(100), nullable=False),
    Column("amount", BigInteger, nullable=False),  # cents
    Column("status", String(16), nullable=False),  # pending|succeeded|failed
    Column("payment_id", String(100), nullable=True),
    Column("failure_code", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("invoice_id", "ticket", "account_id"),
    ForeignKeyConstraint(["invoice_id", "account_id"], ["invoices.id", "invoices.account_id"]),
)
