"""Buyer billing info for invoices, and the gap-free invoice number counters.

Revision ID: 0010_billing_info
Revises: 0009_idem_scope
"""

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import UTCDateTime

revision = "0010_billing_info"
down_revision = "0009_idem_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_info",
        sa.Column(
            "account_id",
            sa.String(64),
            sa.ForeignKey("accounts.id", name="fk_billing_info_account_id_accounts"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("line1", sa.String(200), nullable=True),
        sa.Column("line2", sa.String(200), nullable=True),
        sa.Column("city", sa.String(100), nullable=True),
        sa.Column("state", sa.String(100), nullable=True),
        sa.Column("postal_code", sa.String(32), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("tax_id_type", sa.String(32), nullable=True),
        sa.Column("tax_number", sa.String(64), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_billing_info"),
    )
    op.create_table(
        "invoice_counters",
        sa.Column("series", sa.String(80), nullable=False),
        sa.Column("last_number", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("series", name="pk_invoice_counters"),
    )
    # Until now each account's invoices were numbered count + 1 under the account lock
    # (its series is the account id): carry each series on from its count.
    op.execute(
        "INSERT INTO invoice_counters (series, last_number) "
        "SELECT account_id, COUNT(*) FROM invoices GROUP BY account_id"
    )


def downgrade() -> None:
    op.drop_table("invoice_counters")
    op.drop_table("billing_info")
