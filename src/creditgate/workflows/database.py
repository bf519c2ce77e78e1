"""Prepare a database for use: migrate it to head and seed the default price catalog."""

from __future__ import annotations

from pathlib import Path

from creditgate.clock import Clock, system_clock
from creditgate.db import Database
from creditgate.db.migrate import upgrade
from creditgate.metering.catalog import seed_default_catalog


async def prepare_database(db: Database, clock: Clock = system_clock) -> None:
    """Migrate to head and seed the default price catalog into an empty table."""
    if db.is_sqlite:
        path = db.url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    await upgrade(db)
    async with db.write() as conn:
        await seed_default_catalog(conn, clock())
