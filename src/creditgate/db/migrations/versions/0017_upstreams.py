"""The metering proxy's upstreams: providers' base URLs, encrypted API keys, offered models.

Revision ID: 0017_upstreams
Revises: 0013_cycle_close
"""

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import UTCDateTime

revision = "0017_upstreams"
down_revision = "0013_cycle_close"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstreams",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("api_key_encrypted", sa.Text, nullable=False),
        sa.Column("markup_ppm", sa.BigInteger, nullable=False),
        sa.Column("connect_timeout_ms", sa.Integer, nullable=False),
        sa.Column("read_timeout_ms", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_upstreams"),
    )
    op.create_table(
        "upstream_models",
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column(
            "upstream_id",
            sa.String(40),
            sa.ForeignKey("upstreams.id", name="fk_upstream_models_upstream_id_upstreams"),
            nullable=False,
        ),
        sa.Column("upstream_model", sa.String(200), nullable=False),
        sa.Column("input_rate", sa.BigInteger, nullable=True),
        sa.Column("output_rate", sa.BigInteger, nullable=True),
        sa.Column("cached_input_rate", sa.BigInteger, nullable=True),
        sa.Column("max_output_tokens", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("provider", "name", name="pk_upstream_models"),
    )
    op.create_index("ix_upstream_models_upstream_id", "upstream_models", ["upstream_id"])


def downgrade() -> None:
    op.drop_index("ix_upstream_models_upstream_id", table_name="upstream_models")
    op.drop_table("upstream_models")
    op.drop_table("upstreams")
