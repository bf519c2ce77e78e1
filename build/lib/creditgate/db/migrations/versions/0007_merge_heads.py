"""Join the branches that grew in parallel from 0002 into one head.

Revision ID: 0007_merge_heads
Revises: 0003_grant_expiry, 0004_holds, 0006_autotopup
"""

revision = "0007_merge_heads"
down_revision = ("0003_grant_expiry", "0004_holds", "0006_autotopup")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
