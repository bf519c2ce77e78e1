"""One foreign-key check per stored event instead of three.

Ingest stores an event in one statement that claims its id (`usage_event_ids`), inserts it
(`usage_events`, which references `accounts`) and queues its cost (`usage_pending`). Each of
the three tables referenced `accounts`, so every event paid for three row checks (PostgreSQL's
referential-integrity triggers: about a quarter of the statement's time under EXPLAIN
ANALYZE). The id and the queue row never exist without the event, whose reference is checked,
so their own references go.

Revision ID: 0022_event_checks
Revises: 0020_account_keys
"""

from alembic import op

revision = "0022_event_checks"
down_revision = "0020_account_keys"
branch_labels = None
depends_on = None

_DROPPED = ("usage_event_ids", "usage_pending")


def _name(table: str) -> str:
    return f"fk_{table}_account_id_accounts"


def upgrade() -> None:
    for table in _DROPPED:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(_name(table), type_="foreignkey")


def downgrade() -> None:
    for table in _DROPPED:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(_name(table), "accounts", ["account_id"], ["id"])
