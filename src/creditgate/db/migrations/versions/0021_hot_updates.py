"""Room on each page for the rows the applier updates in place (PostgreSQL only).

The applier adds to the same rows over and over: account balances, hour and day rollups, spend
buckets and window sums. With full pages every such update writes the new row version on
another page and a new entry in every index; with a fifth of each page kept free, PostgreSQL
updates them on the same page without touching the indexes (a HOT update), because none of the
updated columns is indexed. Existing pages keep their layout until they are rewritten.

Revision ID: 0021_hot_updates
Revises: 0015_portal_sessions
"""

from alembic import op

revision = "0021_hot_updates"
down_revision = "0015_portal_sessions"
branch_labels = None
depends_on = None

UPDATED_IN_PLACE = ("accounts", "usage_rollups", "spend_buckets", "limit_state")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in UPDATED_IN_PLACE:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in UPDATED_IN_PLACE:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
