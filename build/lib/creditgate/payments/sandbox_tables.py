"""The sandbox processor's own tables (created by migration 0003_billing). They live on a
private MetaData: payments may not import creditgate.db, and these rows are the sandbox's
side of the world, not creditgate's."""

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

_meta = MetaData()
customers = Table(
    "sandbox_customers",
    _meta,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("created_ms", BigInteger, nullable=False),
)
cards = Table(
    "sandbox_cards",
    _meta,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("behaviour", String(32), nullable=False),
    Column("brand", String(32), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
payments = Table(
    "sandbox_payments",
    _meta,
    Column("id", String(64), primary_key=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("payment_method_id", String(100), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(24), nullable=False),
    Column("client_secret", String(200), nullable=True),
    Column("failure_code", String(64), nullable=True),
    Column("failure_message", String(500), nullable=True),
    Column("metadata", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
refunds = Table(
    "sandbox_refunds",
    _meta,
    Column("id", String(64), primary_key=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("payment_id", String(64), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
