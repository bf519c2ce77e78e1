"""Migration 0014_usage_api_key on SQLite and PostgreSQL: the upgrade fills usage_events.api_key_id
from the stored metadata and moves those events' sums to keyed rollup rows; the downgrade adds
them back into the keyless rows. Rollup totals never change."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.db.migrate import alembic_config, downgrade, upgrade
from creditgate.db.types import Json, UTCDateTime
from tests import support

REVISION = "0014_usage_api_key"
SUMS = ("events", "input_tokens", "output_tokens", "cached_tokens", "cost")
EVENTS = sa.table(
    "usage_events",
    *(sa.column(n, sa.String) for n in ("account_id", "event_id", "provider", "model")),
    *(sa.column(n, sa.BigInteger) for n in ("input_tokens", "output_tokens", "cached_tokens", "cost")),
    sa.column("occurred_at", UTCDateTime),
    sa.column("received_at", UTCDateTime),
    sa.column("metadata", Json),
)
ROLLUPS = sa.table(
    "usage_rollups",
    *(sa.column(n, sa.String) for n in ("account_id", "granularity", "provider", "model")),
    sa.column("bucket_start", UTCDateTime),
    *(sa.column(n, sa.BigInteger) for n in SUMS),
)
H10, H11 = datetime(2025, 11, 1, 10, tzinfo=UTC), datetime(2025, 11, 1, 11, tzinfo=UTC)
DAY = datetime(2025, 11, 1, tzinfo=UTC)
# (event id, minute of 10:00, metadata, cost): keys "k1", 7 (read as "7"), none, and a bad one
STORED = [
    ("e1", 5, {"api_key_id": "k1", "gateway_id": "g"}, 100),
    ("e2", 40, None, 50),
    ("e3", 70, {"api_key_id": 7}, 30),
    ("e4", 50, {"api_key_id": ["bad"]}, 20),
]


def _run(url: str, work: Any) -> Any:
    async def main() -> Any:
        db = Database(normalize_database_url(url), pool_size=1)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _rollups(url: str, *, keyed: bool = True) -> dict[tuple[Any, ...], tuple[int, int]]:
    """(granularity, bucket start[, api key]) -> (cost, events) of every rollup row."""
    key = ", api_key_id" if keyed else ""
    rows = support.query(url, f"SELECT cost, events, granularity, bucket_start{key} FROM usage_rollups")
    out = {}
    for cost, events, granularity, start, *rest in rows:
        moment = datetime.fromisoformat(start) if isinstance(start, str) else start
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        out[(granularity, moment, *rest)] = (int(cost), int(events))
    return out


def test_upgrade_moves_keyed_usage_and_downgrade_merges_it_back(
    fresh_database_url: str, tmp_path: Path
) -> None:
    url = fresh_database_url
    account = support.new_account_id()
    support.cli(url, "accounts", "create", account, data_dir=tmp_path)
    before = ScriptDirectory.from_config(alembic_config()).get_revision(REVISION).down_revision
    assert isinstance(before, str)

    async def seed(db: Database) -> None:
        await downgrade(db, before)
        hours: dict[tuple[str, datetime], list[int]] = {}
        async with db.write() as conn:
            for event_id, minute, metadata, cost in STORED:
                at = H10.replace(minute=minute % 60, hour=10 + minute // 60)
                row = {"account_id": account, "event_id": event_id, "provider": "openai", "model": "gpt-4o",
                       "input_tokens": 10, "output_tokens": 5, "cached_tokens": 1, "cost": cost,
                       "occurred_at": at, "received_at": at, "metadata": metadata}  # fmt: skip
                await conn.execute(EVENTS.insert().values(**row))
                for key in (("hour", at.replace(minute=0)), ("day", DAY)):
                    sums = hours.setdefault(key, [0] * len(SUMS))
                    for i, value in enumerate((1, 10, 5, 1, cost)):
                        sums[i] += value
            for (granularity, start), sums in hours.items():
                await conn.execute(
                    ROLLUPS.insert().values(
                        account_id=account, granularity=granularity, bucket_start=start, provider="openai",
                        model="gpt-4o", **dict(zip(SUMS, sums, strict=True)),
                    )
                )  # fmt: skip

    _run(url, seed)
    _run(url, upgrade)
    keys = support.query(url, "SELECT event_id, api_key_id FROM usage_events ORDER BY event_id")
    assert [tuple(r) for r in keys] == [("e1", "k1"), ("e2", None), ("e3", "7"), ("e4", None)]
    assert _rollups(url) == {
        ("hour", H10, ""): (70, 2),
        ("hour", H10, "k1"): (100, 1),
        ("hour", H11, "7"): (30, 1),
        ("day", DAY, ""): (70, 2),
        ("day", DAY, "k1"): (100, 1),
        ("day", DAY, "7"): (30, 1),
    }
    _run(url, lambda db: downgrade(db, before))
    assert _rollups(url, keyed=False) == {
        ("hour", H10): (170, 3),
        ("hour", H11): (30, 1),
        ("day", DAY): (200, 4),
    }
    _run(url, upgrade)
    assert _rollups(url)[("day", DAY, "k1")] == (100, 1)
