"""Migrations run on SQLite and PostgreSQL from empty, step down and up again, and match the
tables the code declares."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

# import every models module so metadata knows every table
from creditgate.accounts import models as _accounts  # noqa: F401
from creditgate.billing import inbox_models as _inbox  # noqa: F401
from creditgate.billing import invoice_models as _invoice  # noqa: F401
from creditgate.billing import models as _billing  # noqa: F401
from creditgate.config import normalize_database_url
from creditgate.db import Database, metadata
from creditgate.db.migrate import MIGRATIONS, alembic_config, current, downgrade, upgrade
from creditgate.ledger import models as _ledger  # noqa: F401
from creditgate.limits import models as _limits  # noqa: F401
from creditgate.metering import models as _metering  # noqa: F401
from creditgate.metering import retention
from creditgate.notify import models as _notify  # noqa: F401
from creditgate.payments import sandbox_tables
from creditgate.workflows import proxy_store as _proxy  # noqa: F401
from tests import support


def _empty_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    support.pg_or_skip()
    return support.create_pg_database()


def _tables(db: Database) -> set[str]:
    async def main() -> set[str]:
        async with db.read() as conn:
            names = await conn.run_sync(lambda sync: sync.dialect.get_table_names(sync))
        return set(names) - {"alembic_version"}

    return asyncio.run(main())


def test_upgrade_from_empty_downgrade_and_upgrade_again(backend: str, tmp_path: Path) -> None:
    url = _empty_url(backend, tmp_path)
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    try:

        async def main() -> None:
            db = Database(normalize_database_url(url), pool_size=2)
            try:
                assert await current(db) == set()
                await upgrade(db)
                assert await current(db) == heads
                await upgrade(db)  # a second run is a no-op
                assert await current(db) == heads
                await downgrade(db, "base")
                assert await current(db) == set()
                await upgrade(db, "0001_core")
                assert await current(db) == {"0001_core"}
                await upgrade(db)
                assert await current(db) == heads
            finally:
                await db.dispose()

        asyncio.run(main())
        db = Database(normalize_database_url(url), pool_size=1)
        declared = {t.name for m in (metadata, sandbox_tables._meta) for t in m.sorted_tables}
        assert declared <= _tables(db)
        asyncio.run(db.dispose())
    finally:
        if backend == "postgresql":
            support.drop_pg_database(url)


def test_migrated_schema_matches_the_declared_tables(fresh_database_url: str) -> None:
    """Autogenerate finds nothing to add or drop: models.py and the migrations agree."""

    async def main() -> list[object]:
        db = Database(normalize_database_url(fresh_database_url), pool_size=1)
        try:
            async with db.read() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"include_name": _not_a_partition}),
                        [metadata, sandbox_tables._meta],  # type: ignore[arg-type]
                    )
                )
        finally:
            await db.dispose()

    diff = [d for d in asyncio.run(main()) if _relevant(d)]
    assert diff == []


def _not_a_partition(name: str | None, kind: str, parents: dict[str, str | None]) -> bool:
    """usage_events' monthly partitions (PostgreSQL) are not tables of the declared schema."""
    table = name if kind == "table" else parents.get("table_name")
    return table is None or not retention.is_partition(table)


def _relevant(diff: object) -> bool:
    # column-level type/nullable details vary by dialect; tables, columns and indexes must agree
    kind = diff[0] if isinstance(diff, tuple) else diff[0][0]  # type: ignore[index]
    return kind in ("add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index")


def test_migration_files_are_packaged() -> None:
    assert (MIGRATIONS / "env.py").is_file()
    assert list((MIGRATIONS / "versions").glob("0001_core.py"))
