"""Spending-limit configuration.

Revision ID: 0002_spending_limits
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import UTCDateTime

revision = "0002_spending_limits"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spending_limits",
        sa.Column(
            "account_id",
            sa.String(64),
            sa.ForeignKey("accounts.id", name="fk_spending_limits_account_id_accounts"),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("duration", sa.String(8), nullable=False),
        sa.Column("strategy", sa.String(8), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_spending_limits"),
    )


def downgrade() -> None:
    op.drop_table("spending_limits")
