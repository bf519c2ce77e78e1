"""Integer ids that share their table's primary key with `account_id` (the key a database
sharded by account needs), generated the same way for every INSERT the code sends.

Neither backend numbers such a column by itself when SQLAlchemy names it: PostgreSQL's
sequence default (the column's, from BIGSERIAL) only applies when the INSERT leaves the column
out, and SQLite only numbers a lone INTEGER PRIMARY KEY. So the column's default takes one
block of ids per statement (however many rows it inserts, in row order): PostgreSQL from the
column's own sequence (statements written in SQL that leave the column out still get its
default), SQLite from `id_series`, one row per table, updated under the writer's lock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import BigInteger, Column, String, Table

from creditgate.db.metadata import metadata

# SQLite's counters (PostgreSQL keeps this table empty and uses sequences): the last id given
# out per table; a migration that adds a table starts its row at the table's highest id.
id_series = Table(
    "id_series",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
)

_SQLITE_TAKE = (
    "INSERT INTO id_series (name, last_id) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET last_id = last_id + excluded.last_id RETURNING last_id"
)
_PG_TAKE = (
    "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, {count}) ORDER BY 1"
)
_BLOCKS = "_creditgate_id_blocks"


def serial(table: str) -> Callable[[Any], int]:
    """The `default` of `table`'s `id` column: the next id of the statement's block."""

    def next_id(context: Any) -> int:
        blocks: dict[str, Iterator[int]] = context.__dict__.setdefault(_BLOCKS, {})
        if table not in blocks:
            count = len(context.compiled_parameters)
            conn = context.root_connection
            if context.dialect.name == "postgresql":
                rows = conn.exec_driver_sql(_PG_TAKE.format(table=table, count=count))
                blocks[table] = iter([int(r[0]) for r in rows])
            else:
                last = int(conn.exec_driver_sql(_SQLITE_TAKE, (table, count)).scalar_one())
                blocks[table] = iter(range(last - count + 1, last + 1))
        return next(blocks[table])

    return next_id
