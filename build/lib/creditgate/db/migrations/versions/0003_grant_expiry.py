"""Grant expiry: a partial index over the (few) ledger entries that carry an expiry.

Revision ID: 0003_grant_expiry
Revises: 0002_spending_limits
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_grant_expiry"
down_revision = "0002_spending_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_entries_expires_at",
        "ledger_entries",
        ["expires_at"],
        postgresql_where=sa.text("expires_at IS NOT NULL"),
        sqlite_where=sa.text("expires_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_expires_at", table_name="ledger_entries")
