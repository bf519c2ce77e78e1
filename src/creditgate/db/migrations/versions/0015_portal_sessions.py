"""The billing portal's one-time links and browser sessions (hashed tokens only).

Revision ID: 0015_portal_sessions
Revises: 0012_postpaid_limits
"""

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import UTCDateTime

revision = "0015_portal_sessions"
down_revision = "0018_usage_applier"
branch_labels = None
depends_on = None


def _account(table: str, *, nullable: bool) -> sa.Column[str]:
    return sa.Column(
        "account_id",
        sa.String(64),
        sa.ForeignKey("accounts.id", name=f"fk_{table}_account_id_accounts"),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "portal_links",
        sa.Column("token_hash", sa.String(64), nullable=False),
        _account("portal_links", nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.Column("return_url", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_portal_links"),
    )
    op.create_index("ix_portal_links_account_id", "portal_links", ["account_id"])
    op.create_table(
        "portal_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        _account("portal_sessions", nullable=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("return_url", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_portal_sessions"),
    )
    op.create_index("ix_portal_sessions_account_id", "portal_sessions", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_portal_sessions_account_id", table_name="portal_sessions")
    op.drop_table("portal_sessions")
    op.drop_index("ix_portal_links_account_id", table_name="portal_links")
    op.drop_table("portal_links")
