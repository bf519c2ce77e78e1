"""Billing: profiles, saved cards, invoices, top-ups, auto top-up config; sandbox processor state.

Revision ID: 0003_billing
Revises: 0002_spending_limits
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import UTCDateTime

revision = "0003_billing"
down_revision = "0002_spending_limits"
branch_labels = None
depends_on = None


def _account_fk(table: str) -> "sa.Column[Any]":
    return sa.Column(
        "account_id",
        sa.String(64),
        sa.ForeignKey("accounts.id", name=f"fk_{table}_account_id_accounts"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "billing_profiles",
        _account_fk("billing_profiles"),
        sa.Column("processor", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(100), nullable=True),
        sa.Column("default_payment_method_id", sa.String(100), nullable=True),
        sa.Column("brand", sa.String(32), nullable=True),
        sa.Column("last4", sa.String(4), nullable=True),
        sa.Column("first_topup_success", sa.Boolean, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_billing_profiles"),
    )
    op.create_table(
        "billing_cards",
        _account_fk("billing_cards"),
        sa.Column("payment_method_id", sa.String(100), nullable=False),
        sa.Column("brand", sa.String(32), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("exp_month", sa.Integer, nullable=True),
        sa.Column("exp_year", sa.Integer, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "payment_method_id", name="pk_billing_cards"),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(40), nullable=False),
        _account_fk("invoices"),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_due", sa.BigInteger, nullable=False),
        sa.Column("amount_paid", sa.BigInteger, nullable=False),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("attempt_count", sa.Integer, nullable=False),
        sa.Column("pdf_key", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("paid_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_invoices"),
        sa.UniqueConstraint("account_id", "number", name="uq_invoices_account_id_number"),
    )
    op.create_index("ix_invoices_account_id_created_at", "invoices", ["account_id", "created_at"])
    op.create_table(
        "topups",
        sa.Column("id", sa.String(40), nullable=False),
        _account_fk("topups"),
        sa.Column(
            "invoice_id",
            sa.String(40),
            sa.ForeignKey("invoices.id", name="fk_topups_invoice_id_invoices"),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(100), nullable=False),
        sa.Column("payment_method_id", sa.String(100), nullable=False),
        sa.Column("requested_method", sa.String(100), nullable=True),
        sa.Column("request_key", sa.String(255), nullable=True),
        sa.Column("payment_id", sa.String(100), nullable=True),
        sa.Column("client_secret", sa.String(200), nullable=True),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("failure_message", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("completed_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_topups"),
        sa.UniqueConstraint("invoice_id", name="uq_topups_invoice_id"),
        sa.UniqueConstraint("account_id", "request_key", name="uq_topups_account_id_request_key"),
    )
    op.create_index("ix_topups_account_id_created_at", "topups", ["account_id", "created_at"])
    op.create_table(
        "auto_topup_configs",
        _account_fk("auto_topup_configs"),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("threshold", sa.BigInteger, nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("disabled_reason", sa.String(500), nullable=True),
        sa.Column("last_failed_at", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_auto_topup_configs"),
    )
    # The built-in sandbox card processor keeps its state here (it stands in for Stripe's side).
    op.create_table(
        "sandbox_customers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sandbox_customers"),
        sa.UniqueConstraint("idempotency_key", name="uq_sandbox_customers_idempotency_key"),
    )
    op.create_table(
        "sandbox_cards",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("behaviour", sa.String(32), nullable=False),
        sa.Column("brand", sa.String(32), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("exp_month", sa.Integer, nullable=False),
        sa.Column("exp_year", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sandbox_cards"),
    )
    op.create_table(
        "sandbox_payments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("payment_method_id", sa.String(100), nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("client_secret", sa.String(200), nullable=True),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("failure_message", sa.String(500), nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sandbox_payments"),
        sa.UniqueConstraint("idempotency_key", name="uq_sandbox_payments_idempotency_key"),
    )
    op.create_table(
        "sandbox_refunds",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sandbox_refunds"),
        sa.UniqueConstraint("idempotency_key", name="uq_sandbox_refunds_idempotency_key"),
    )


def downgrade() -> None:
    for table in (
        "sandbox_refunds",
        "sandbox_payments",
        "sandbox_cards",
        "sandbox_customers",
        "auto_topup_configs",
        "topups",
        "invoices",
        "billing_cards",
        "billing_profiles",
    ):
        op.drop_table(table)
