"""Usage events grow: a deduplication table of event ids, and raw events partitioned by month.

Revision ID: 0019_usage_partitions
Revises: 0021_hot_updates

`usage_event_ids` (account_id, event_id, received_at) becomes the deduplication key, filled
from every stored event. `usage_events` gets the key (account_id, event_id, occurred_at); on
PostgreSQL it becomes a table partitioned by RANGE (occurred_at): the existing table is
renamed, a partitioned one is created with a partition per month that holds events, the
current month and the next two, and a DEFAULT partition, the rows are copied over and the old
table dropped. The downgrade copies the events back into one plain table keyed (account_id,
event_id), keeping the first received of any id stored twice (an id retried after the
deduplication horizon with a new timestamp), and drops usage_event_ids.

The partition SQL is a copy of creditgate/metering/partitions.py as of this revision.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import UTCDateTime

revision = "0019_usage_partitions"
down_revision = "0021_hot_updates"
branch_labels = None
depends_on = None

_COLUMNS = (
    "account_id, event_id, occurred_at, provider, model, input_tokens, output_tokens, cached_tokens, "
    "cost, price_id, hold_id, metadata, received_at, api_key_id"
)
_COLUMN_DDL = (
    "account_id varchar(64) NOT NULL, event_id varchar(200) NOT NULL, occurred_at timestamptz NOT NULL, "
    "provider varchar(64) NOT NULL, model varchar(200) NOT NULL, input_tokens bigint NOT NULL, "
    "output_tokens bigint NOT NULL, cached_tokens bigint NOT NULL, cost bigint NOT NULL, price_id bigint, "
    "hold_id varchar(64), metadata jsonb, received_at timestamptz NOT NULL, api_key_id varchar(200)"
)
_FK = "FOREIGN KEY (account_id) REFERENCES accounts (id)"
_IX = "ix_usage_events_account_id_occurred_at"
_AHEAD = 2  # months created ahead of the current one


def _month(moment: datetime, add: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 + add
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _rename_events(suffix: str) -> None:
    """usage_events and its named constraints and index get `suffix` (their names are global)."""
    op.execute(f"ALTER TABLE usage_events RENAME TO usage_events{suffix}")
    for name in ("pk_usage_events", "fk_usage_events_account_id_accounts"):
        op.execute(f"ALTER TABLE usage_events{suffix} RENAME CONSTRAINT {name} TO {name}{suffix}")
    op.execute(f"ALTER INDEX {_IX} RENAME TO {_IX}{suffix}")


def _upgrade_postgresql() -> None:
    _rename_events("_plain")
    op.execute(
        f"CREATE TABLE usage_events ({_COLUMN_DDL}, "
        "CONSTRAINT pk_usage_events PRIMARY KEY (account_id, event_id, occurred_at), "
        f"CONSTRAINT fk_usage_events_account_id_accounts {_FK}) PARTITION BY RANGE (occurred_at)"
    )
    op.execute(f"CREATE INDEX {_IX} ON usage_events (account_id, occurred_at)")
    op.execute("CREATE TABLE usage_events_default PARTITION OF usage_events DEFAULT")
    stored = op.get_bind().execute(
        sa.text("SELECT DISTINCT date_trunc('month', occurred_at, 'UTC') FROM usage_events_plain")
    )
    now = datetime.now(UTC)
    months = {_month(r[0].astimezone(UTC)) for r in stored} | {_month(now, k) for k in range(_AHEAD + 1)}
    for start in sorted(months):
        op.execute(
            f"CREATE TABLE usage_events_p{start:%Y%m} PARTITION OF usage_events "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{_month(start, 1).isoformat()}')"
        )
    op.execute(f"INSERT INTO usage_events ({_COLUMNS}) SELECT {_COLUMNS} FROM usage_events_plain")  # noqa: S608
    op.execute("DROP TABLE usage_events_plain")


def _downgrade_postgresql() -> None:
    _rename_events("_partitioned")
    op.execute(
        f"CREATE TABLE usage_events ({_COLUMN_DDL}, "
        "CONSTRAINT pk_usage_events PRIMARY KEY (account_id, event_id), "
        f"CONSTRAINT fk_usage_events_account_id_accounts {_FK})"
    )
    op.execute(f"CREATE INDEX {_IX} ON usage_events (account_id, occurred_at)")
    op.execute(
        f"INSERT INTO usage_events ({_COLUMNS}) SELECT DISTINCT ON (account_id, event_id) {_COLUMNS} "  # noqa: S608
        "FROM usage_events_partitioned ORDER BY account_id, event_id, received_at, occurred_at"
    )
    op.execute("DROP TABLE usage_events_partitioned")  # its partitions with it


def upgrade() -> None:
    op.create_table(
        "usage_event_ids",
        sa.Column(
            "account_id",
            sa.String(64),
            sa.ForeignKey("accounts.id", name="fk_usage_event_ids_account_id_accounts"),
            nullable=False,
        ),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "event_id", name="pk_usage_event_ids"),
    )
    op.execute(
        "INSERT INTO usage_event_ids (account_id, event_id, received_at) "
        "SELECT account_id, event_id, received_at FROM usage_events"
    )
    op.create_index(
        "ix_usage_event_ids_received_at", "usage_event_ids", ["received_at"], postgresql_using="brin"
    )
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
        return
    with op.batch_alter_table("usage_events", recreate="always") as batch:
        batch.drop_constraint("pk_usage_events", type_="primary")
        batch.create_primary_key("pk_usage_events", ["account_id", "event_id", "occurred_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
    else:
        op.execute(
            "DELETE FROM usage_events WHERE rowid NOT IN (SELECT rowid FROM (SELECT rowid, "
            "row_number() OVER (PARTITION BY account_id, event_id ORDER BY received_at, occurred_at) "
            "AS n FROM usage_events) WHERE n = 1)"
        )
        with op.batch_alter_table("usage_events", recreate="always") as batch:
            batch.drop_constraint("pk_usage_events", type_="primary")
            batch.create_primary_key("pk_usage_events", ["account_id", "event_id"])
    op.drop_index("ix_usage_event_ids_received_at", table_name="usage_event_ids")
    op.drop_table("usage_event_ids")
