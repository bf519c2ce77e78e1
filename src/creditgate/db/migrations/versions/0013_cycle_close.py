"""Billing cycle close: the ledger usage of each closed month, and the card charges of
monthly invoices (xAI `chargerAttempts`).

Revision ID: 0013_cycle_close
Revises: 0012_postpaid_limits
"""

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import UTCDateTime

revision = "0013_cycle_close"
down_revision = "0012_postpaid_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for months closed before: their SPEND change is read from the ledger, as it was.
    op.add_column("statements", sa.Column("usage", sa.BigInteger, nullable=True))
    op.create_table(
        "statement_charges",
        sa.Column("invoice_id", sa.String(40), sa.ForeignKey("invoices.id"), nullable=False),
        sa.Column("ticket", sa.Integer, nullable=False),
        sa.Column("account_id", sa.String(64), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("payment_method_id", sa.String(100), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payment_id", sa.String(100), nullable=True),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", "ticket"),
    )


def downgrade() -> None:
    op.drop_table("statement_charges")
    with op.batch_alter_table("statements") as batch:
        batch.drop_column("usage")
