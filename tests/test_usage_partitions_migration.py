"""Migration 0019_usage_partitions on SQLite and PostgreSQL, with data: the upgrade keeps every
event (on PostgreSQL in a monthly partition of its own month), fills usage_event_ids from them
so a retry of a stored id is still a duplicate, and the downgrade gives the plain table back
with every event, keeping the first of an id stored twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from creditgate.accounts.principal import OPERATOR
from creditgate.clock import to_ms
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.db.migrate import alembic_config, downgrade, upgrade
from creditgate.db.types import UTCDateTime
from creditgate.workflows.usage import report_usage
from tests import support

REVISION = "0019_usage_partitions"
EVENTS = sa.table(
    "usage_events",
    *(sa.column(n, sa.String) for n in ("account_id", "event_id", "provider", "model")),
    *(sa.column(n, sa.BigInteger) for n in ("input_tokens", "output_tokens", "cached_tokens", "cost")),
    sa.column("occurred_at", UTCDateTime),
    sa.column("received_at", UTCDateTime),
)
STORED = {  # event id -> occurred_at: three months
    "a": datetime(2025, 10, 31, 23, 59, tzinfo=UTC),
    "b": datetime(2025, 11, 1, 0, 1, tzinfo=UTC),
    "c": datetime(2026, 2, 14, 9, tzinfo=UTC),
}


def _run(url: str, work: Any) -> Any:
    async def main() -> Any:
        db = Database(normalize_database_url(url), pool_size=1)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _events(url: str) -> list[tuple[str, int]]:
    return [
        (r[0], int(r[1]))
        for r in support.query(url, "SELECT event_id, cost FROM usage_events ORDER BY event_id")
    ]


def test_upgrade_partitions_and_dedupes_stored_events_and_downgrade_gives_them_back(
    fresh_database_url: str, tmp_path: Path
) -> None:
    url = fresh_database_url
    postgres = url.startswith("postgresql")
    account = support.new_account_id()
    support.cli(url, "accounts", "create", account, data_dir=tmp_path)
    before = ScriptDirectory.from_config(alembic_config()).get_revision(REVISION).down_revision
    assert isinstance(before, str)

    async def seed(db: Database) -> None:
        await downgrade(db, before)
        async with db.write() as conn:
            for event_id, at in STORED.items():
                row = {"account_id": account, "event_id": event_id, "provider": "openai", "model": "gpt-4o",
                       "input_tokens": 1, "output_tokens": 1, "cached_tokens": 0, "cost": 7,
                       "occurred_at": at, "received_at": at}  # fmt: skip
                await conn.execute(EVENTS.insert().values(**row))

    _run(url, seed)
    _run(url, upgrade)
    assert _events(url) == [("a", 7), ("b", 7), ("c", 7)]
    ids = support.query(
        url, "SELECT event_id FROM usage_event_ids WHERE account_id = :a ORDER BY 1", a=account
    )
    assert [r[0] for r in ids] == ["a", "b", "c"]
    if postgres:
        for event_id, partition in (("a", "p202510"), ("b", "p202511"), ("c", "p202602")):
            rows = support.query(url, f"SELECT event_id FROM usage_events_{partition}")
            assert [r[0] for r in rows] == [event_id]
        assert support.query(url, "SELECT count(*) FROM usage_events_default")[0][0] == 0

    # a retry of "a" with a new timestamp is a duplicate; "d" is new; a retry of "c" past the
    # horizon (its id forgotten) with a new timestamp is stored twice: the downgrade keeps one
    support.query(url, "DELETE FROM usage_event_ids WHERE event_id = 'c'")

    async def retry(db: Database) -> None:
        ctx = support.job_context(db, settings=support.make_settings(url, tmp_path))
        at = to_ms(datetime(2026, 3, 1, tzinfo=UTC))
        batch = [{"id": e, "account_id": account, "model": "m", "cost_usd": "0.01", "input_tokens": 0,
                  "output_tokens": 0, "timestamp": at} for e in ("a", "c", "d")]  # fmt: skip
        result = await report_usage(ctx, batch, OPERATOR)
        assert (result.accepted, result.duplicates) == (2, 1)

    _run(url, retry)
    assert [e for e, _ in _events(url)] == ["a", "b", "c", "c", "d"]

    _run(url, lambda db: downgrade(db, before))
    assert _events(url) == [("a", 7), ("b", 7), ("c", 7), ("d", 10_000_000)]
    tables = {r[0] for r in support.query(url, _TABLES_PG if postgres else _TABLES)}
    assert "usage_event_ids" not in tables and not any(t.startswith("usage_events_") for t in tables)
    _run(url, upgrade)
    assert [e for e, _ in _events(url)] == ["a", "b", "c", "d"]


_TABLES_PG = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
