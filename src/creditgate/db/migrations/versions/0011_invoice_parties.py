"""Freeze each invoice's seller, tax and buyer into its row when it is issued.

Revision ID: 0011_invoice_parties
Revises: 0010_billing_info
"""

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import Json

revision = "0011_invoice_parties"
down_revision = "0010_billing_info"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for the invoices issued before: they keep rendering from the current settings and
    # billing info, as they did.
    op.add_column("invoices", sa.Column("parties", Json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("parties")
