"""The gateway's api key becomes a dimension of usage: a column of usage_events (taken from
metadata.api_key_id) and part of the key of usage_rollups ("" for usage without a key), so
usage analytics can group and filter by it.

Revision ID: 0014_usage_api_key
Revises: 0011_invoice_parties

The upgrade fills the column from the metadata already stored and moves those events' sums
from the keyless rollup rows to keyed ones; the downgrade adds the keyed rows back into the
keyless ones. Rollup totals are unchanged either way.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from creditgate.db.types import Json, UTCDateTime

revision = "0014_usage_api_key"
down_revision = "0011_invoice_parties"
branch_labels = None
depends_on = None

_PK = "pk_usage_rollups"
_OLD_KEY = ["account_id", "granularity", "bucket_start", "provider", "model"]
_SUMS = ("events", "input_tokens", "output_tokens", "cached_tokens", "cost")
_MAX_KEY = 200
_events = sa.table(
    "usage_events",
    sa.column("account_id", sa.String),
    sa.column("event_id", sa.String),
    sa.column("occurred_at", UTCDateTime),
    sa.column("provider", sa.String),
    sa.column("model", sa.String),
    sa.column("input_tokens", sa.BigInteger),
    sa.column("output_tokens", sa.BigInteger),
    sa.column("cached_tokens", sa.BigInteger),
    sa.column("cost", sa.BigInteger),
    sa.column("metadata", Json),
    sa.column("api_key_id", sa.String),
)
_rollups = sa.table(
    "usage_rollups",
    *(
        sa.column(name, sa.String)
        for name in ("account_id", "granularity", "provider", "model", "api_key_id")
    ),
    sa.column("bucket_start", UTCDateTime),
    *(sa.column(name, sa.BigInteger) for name in _SUMS),
)
RollupKey = tuple[str, str, datetime, str, str]  # account, granularity, bucket, provider, model


def _key_of(metadata: Any) -> str | None:
    """metadata.api_key_id as ingest reads it (metering/events.py); anything else is no key."""
    value = metadata.get("api_key_id") if isinstance(metadata, dict) else None
    if type(value) is int:
        value = str(value)
    return value if isinstance(value, str) and 0 < len(value) <= _MAX_KEY else None


def _where(key: RollupKey, api_key_id: str) -> Any:
    c = _rollups.c
    return sa.and_(
        *(c[name] == value for name, value in zip(_OLD_KEY, key, strict=True)), c.api_key_id == api_key_id
    )


def _backfill(bind: Any) -> None:
    has_key = (
        sa.text("usage_events.metadata ->> 'api_key_id' IS NOT NULL")
        if bind.dialect.name == "postgresql"
        else sa.text("json_extract(usage_events.metadata, '$.api_key_id') IS NOT NULL")
    )
    c = _events.c
    rows = bind.execute(
        sa.select(
            c.account_id,
            c.event_id,
            c.occurred_at,
            c.provider,
            c.model,
            *(c[n] for n in _SUMS[1:]),
            c.metadata,
        ).where(has_key)
    ).all()
    moved: dict[tuple[RollupKey, str], list[int]] = defaultdict(lambda: [0] * len(_SUMS))
    for account_id, event_id, at, provider, model, inp, out, cached, cost, metadata in rows:
        api_key_id = _key_of(metadata)
        if api_key_id is None:
            continue
        bind.execute(
            _events.update()
            .where(c.account_id == account_id, c.event_id == event_id)
            .values(api_key_id=api_key_id)
        )
        hour = at.replace(minute=0, second=0, microsecond=0)
        for granularity, start in (("hour", hour), ("day", hour.replace(hour=0))):
            sums = moved[((account_id, granularity, start, provider, model), api_key_id)]
            for i, value in enumerate((1, inp, out, cached, cost)):
                sums[i] += int(value)
    r = _rollups.c
    for (key, api_key_id), sums in moved.items():
        bind.execute(
            _rollups.update()
            .where(_where(key, ""))
            .values({name: r[name] - value for name, value in zip(_SUMS, sums, strict=True)})
        )
        bind.execute(_rollups.delete().where(_where(key, ""), r.events == 0, r.cost == 0))
        values = dict(zip(_OLD_KEY, key, strict=True)) | dict(zip(_SUMS, sums, strict=True))
        bind.execute(_rollups.insert().values(api_key_id=api_key_id, **values))


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("api_key_id", sa.String(200), nullable=True))
    with op.batch_alter_table("usage_rollups") as batch:
        batch.add_column(sa.Column("api_key_id", sa.String(200), nullable=False, server_default=""))
    with op.batch_alter_table("usage_rollups") as batch:
        batch.drop_constraint(_PK, type_="primary")
        batch.create_primary_key(_PK, [*_OLD_KEY, "api_key_id"])
        batch.alter_column("api_key_id", server_default=None, existing_type=sa.String(200))
    _backfill(op.get_bind())


def downgrade() -> None:
    bind = op.get_bind()
    r = _rollups.c
    keyed = bind.execute(
        sa.select(*(r[n] for n in _OLD_KEY), *(r[n] for n in _SUMS)).where(r.api_key_id != "")
    ).all()
    merged: dict[RollupKey, list[int]] = defaultdict(lambda: [0] * len(_SUMS))
    for row in keyed:
        sums = merged[tuple(row[:5])]  # type: ignore[index]
        for i, value in enumerate(row[5:]):
            sums[i] += int(value)
    bind.execute(_rollups.delete().where(r.api_key_id != ""))
    for key, sums in merged.items():
        added = bind.execute(
            _rollups.update()
            .where(_where(key, ""))
            .values({name: r[name] + value for name, value in zip(_SUMS, sums, strict=True)})
        )
        if added.rowcount == 0:
            values = dict(zip(_OLD_KEY, key, strict=True)) | dict(zip(_SUMS, sums, strict=True))
            bind.execute(_rollups.insert().values(api_key_id="", **values))
    with op.batch_alter_table("usage_rollups") as batch:
        batch.drop_constraint(_PK, type_="primary")
        batch.create_primary_key(_PK, _OLD_KEY)
        batch.drop_column("api_key_id")
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("api_key_id")
