"""Holds, per-minute spend buckets and the running window sum used by enforcement.

Revision ID: 0004_holds
Revises: 0002_spending_limits
"""

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import Json, UTCDateTime

revision = "0004_holds"
down_revision = "0002_spending_limits"
branch_labels = None
depends_on = None


def _account_fk(table: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "account_id",
        sa.String(64),
        sa.ForeignKey("accounts.id", name=f"fk_{table}_account_id_accounts"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.String(40), nullable=False),
        _account_fk("holds"),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("metadata", Json, nullable=True),
        sa.Column("remaining_credit", sa.BigInteger, nullable=False),
        sa.Column("remaining_limit", sa.BigInteger, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("captured", sa.BigInteger, nullable=True),
        sa.Column("overrun", sa.BigInteger, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("event_id", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
        sa.UniqueConstraint("account_id", "request_id", name="uq_holds_account_id_request_id"),
    )
    op.create_index("ix_holds_status_expires_at", "holds", ["status", "expires_at"])
    op.create_index("ix_holds_account_id_status", "holds", ["account_id", "status"])
    op.create_table(
        "spend_buckets",
        _account_fk("spend_buckets"),
        sa.Column("bucket_start", UTCDateTime, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "bucket_start", name="pk_spend_buckets"),
    )
    op.create_table(
        "limit_state",
        _account_fk("limit_state"),
        sa.Column("duration", sa.String(8), nullable=False),
        sa.Column("strategy", sa.String(8), nullable=False),
        sa.Column("window_start", UTCDateTime, nullable=False),
        sa.Column("window_spend", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_limit_state"),
    )


def downgrade() -> None:
    op.drop_table("limit_state")
    op.drop_table("spend_buckets")
    op.drop_index("ix_holds_account_id_status", table_name="holds")
    op.drop_index("ix_holds_status_expires_at", table_name="holds")
    op.drop_table("holds")
