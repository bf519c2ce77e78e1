"""Direct driver access for the few hot statements that are worth it (PostgreSQL only).

SQLAlchemy costs ~100-200 us of CPU per statement on top of asyncpg; the ingest path runs a
handful of array statements per transaction, so it talks to asyncpg directly, inside the
transaction SQLAlchemy opened. SQLAlchemy's asyncpg adapter only sends BEGIN before its
first statement, so `pg_driver` makes sure that has happened. The authorize statement runs
alone, in autocommit mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection


async def pg_driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn`, in `conn`'s open transaction; for a connection in
    autocommit mode (`Database.single()`) the bare connection, where each statement commits
    on its own."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:
        raise RuntimeError("connection is closed")
    adapter = raw.dbapi_connection
    if getattr(adapter, "autocommit", False):
        return driver
    if not driver.is_in_transaction():
        start = getattr(adapter, "_start_transaction", None)
        if getattr(adapter, "_transaction", False) is None and start is not None:
            await start()  # the adapter's own BEGIN, as its next execute would have sent
        else:
            await conn.execute(text("SELECT 1"))
        if not driver.is_in_transaction():
            raise RuntimeError("pg_driver needs a connection inside a transaction")
    return driver


def one_of(conn: AsyncConnection, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN values`, bound as one array on PostgreSQL (`= ANY($1)`): an IN list renders
    one placeholder per value, which costs SQLAlchemy tens of microseconds each and gives every
    list length its own prepared statement."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(values))
