"""Auto top-up state machine, refunds and monthly statements; merges the billing and webhook heads.

Revision ID: 0006_autotopup
Revises: 0003_billing, 0005_webhooks
"""

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import Json, UTCDateTime

revision = "0006_autotopup"
down_revision = ("0003_billing", "0005_webhooks")
branch_labels = None
depends_on = None

_ONE_AUTO_IN_FLIGHT = "origin = 'auto' AND status = 'created'"


def upgrade() -> None:
    with op.batch_alter_table("auto_topup_configs") as batch:
        batch.add_column(sa.Column("monthly_cap", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("pending_topup_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("disabled_code", sa.String(32), nullable=True))
        batch.add_column(sa.Column("low_since", UTCDateTime, nullable=True))
    with op.batch_alter_table("topups") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("first_attempt_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("lease_until", UTCDateTime, nullable=True))
    # At most one auto top-up waiting to be charged per account, whatever the code does.
    op.create_index(
        "uq_topups_one_auto_in_flight",
        "topups",
        ["account_id"],
        unique=True,
        sqlite_where=sa.text(_ONE_AUTO_IN_FLIGHT),
        postgresql_where=sa.text(_ONE_AUTO_IN_FLIGHT),
    )
    op.create_index("ix_topups_payment_id", "topups", ["payment_id"])
    if op.get_bind().dialect.name == "postgresql":  # SQLite does not enforce VARCHAR lengths
        op.alter_column("invoices", "origin", type_=sa.String(16), existing_nullable=False)

    op.create_table(
        "topup_refunds",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column(
            "account_id",
            sa.String(64),
            sa.ForeignKey("accounts.id", name="fk_topup_refunds_account_id_accounts"),
            nullable=False,
        ),
        sa.Column(
            "topup_id",
            sa.String(40),
            sa.ForeignKey("topups.id", name="fk_topup_refunds_topup_id_topups"),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("processor_refund_id", sa.String(100), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("request_key", sa.String(255), nullable=True),
        sa.Column("failure_message", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("completed_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_topup_refunds"),
        sa.UniqueConstraint(
            "account_id", "processor_refund_id", name="uq_topup_refunds_account_id_processor_refund_id"
        ),
        sa.UniqueConstraint("account_id", "request_key", name="uq_topup_refunds_account_id_request_key"),
    )
    op.create_index("ix_topup_refunds_topup_id", "topup_refunds", ["topup_id"])

    op.create_table(
        "statements",
        sa.Column(
            "account_id",
            sa.String(64),
            sa.ForeignKey("accounts.id", name="fk_statements_account_id_accounts"),
            nullable=False,
        ),
        sa.Column("period_start", UTCDateTime, nullable=False),
        sa.Column("period_end", UTCDateTime, nullable=False),
        sa.Column(
            "invoice_id",
            sa.String(40),
            sa.ForeignKey("invoices.id", name="fk_statements_invoice_id_invoices"),
            nullable=True,
        ),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("late", sa.BigInteger, nullable=False),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.Column("due", sa.BigInteger, nullable=False),
        sa.Column("lines", Json, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "period_start", name="pk_statements"),
        sa.UniqueConstraint("invoice_id", name="uq_statements_invoice_id"),
    )


def downgrade() -> None:
    op.drop_table("statements")
    op.drop_index("ix_topup_refunds_topup_id", table_name="topup_refunds")
    op.drop_table("topup_refunds")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("invoices", "origin", type_=sa.String(8), existing_nullable=False)
    op.drop_index("ix_topups_payment_id", table_name="topups")
    op.drop_index("uq_topups_one_auto_in_flight", table_name="topups")
    with op.batch_alter_table("topups") as batch:
        for column in ("lease_until", "first_attempt_at", "attempts"):
            batch.drop_column(column)
    with op.batch_alter_table("auto_topup_configs") as batch:
        for column in (
            "low_since",
            "disabled_code",
            "pending_topup_id",
            "next_attempt_at",
            "failures",
            "monthly_cap",
        ):
            batch.drop_column(column)
