"""Migration 0012_postpaid_limits on SQLite and PostgreSQL: an existing database keeps every
account's allowance (a postpaid account's credit_limit becomes its hard limit, with no soft
limit; a prepaid account's, which was never used, becomes 0), authorize then enforces it, and
a downgrade puts the effective limit back into credit_limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text

from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.db.migrate import alembic_config, downgrade, upgrade
from creditgate.limits import postpaid
from creditgate.limits import service as limits
from creditgate.money import cents
from tests import support

T0 = datetime(2030, 1, 1, tzinfo=UTC)
# the revision before 0012 (the lead re-chains revisions at merge time)
BEFORE = str(ScriptDirectory.from_config(alembic_config()).get_revision("0012_postpaid_limits").down_revision)
INSERT = (
    "INSERT INTO accounts (id, name, currency, mode, credit_limit, balance, held, created_at) "
    "VALUES (:a, :a, 'USD', :m, :c, :b, 0, :t)"
)


def test_existing_allowances_carry_over_and_back(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        support.pg_or_skip()
        url = support.create_pg_database()

    async def main() -> None:
        db = Database(normalize_database_url(url), pool_size=2)
        try:
            await upgrade(db, BEFORE)
            async with db.write() as conn:
                for account, mode, limit, balance in (
                    ("post", "postpaid", cents(700), cents(100)),
                    ("pre", "prepaid", cents(500), cents(100)),
                ):
                    await conn.execute(
                        text(INSERT), {"a": account, "m": mode, "c": limit, "b": balance, "t": T0}
                    )
            await upgrade(db)
            async with db.write() as conn:
                assert await postpaid.get_limits(conn, "post") == postpaid.PostpaidLimits(
                    "post", cents(700), None
                )
                assert await postpaid.get_limits(conn, "pre") == postpaid.PostpaidLimits("pre", 0, None)
                # 1 dollar of credit plus 7 on account for the postpaid one; the credit alone for the other
                for account, room in (("post", cents(800)), ("pre", cents(100))):
                    over = await limits.authorize(
                        conn, account_id=account, request_id="x", amount=room + 1, now=T0, ttl_seconds=60
                    )
                    assert over.reason == "insufficient_credit"
                    exact = await limits.authorize(
                        conn, account_id=account, request_id="y", amount=room, now=T0, ttl_seconds=60
                    )
                    assert exact.allowed
                await postpaid.set_soft_limit(conn, "post", cents(300))
            await downgrade(db, BEFORE)
            async with db.read() as conn:
                rows = await conn.execute(text("SELECT id, credit_limit FROM accounts ORDER BY id"))
                assert [tuple(r) for r in rows] == [("post", cents(300)), ("pre", 0)]
        finally:
            await db.dispose()

    try:
        asyncio.run(main())
    finally:
        if backend == "postgresql":
            support.drop_pg_database(url)
