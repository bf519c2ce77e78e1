"""PostgreSQL LISTEN/NOTIFY: how one process tells every other process something changed.

`notify` queues a message inside the caller's transaction; PostgreSQL delivers it to every
listener when (and only if) that transaction commits. `listen` keeps one dedicated connection
(outside the pool) listening on a channel, reconnecting with backoff; it tells its owner when
it is up and when it is down, so that a cache fed by it can stop caching while messages might
be missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger("creditgate.db.notify")

HEARTBEAT_SECONDS = 5.0  # a silent network loss is noticed within about this
MAX_BACKOFF_SECONDS = 10.0


async def notify(conn: AsyncConnection, channel: str, payload: str) -> None:
    """Queue `payload` on `channel`, delivered at commit of `conn`'s transaction (PostgreSQL
    only; a no-op elsewhere: SQLite has one process)."""
    if conn.dialect.name == "postgresql":
        statement = text("SELECT pg_notify(:channel, :payload)")
        await conn.execute(statement, {"channel": channel, "payload": payload})


def driver_dsn(database_url: str) -> str:
    """The plain libpq URL asyncpg takes, from a SQLAlchemy `postgresql+asyncpg://` URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def listen(
    database_url: str,
    channel: str,
    on_message: Callable[[str], None],
    on_up: Callable[[], None],
    on_down: Callable[[], None],
) -> None:
    """Listen on `channel` until cancelled. `on_up` runs once LISTEN is in place (every
    message committed after that reaches `on_message`); `on_down` runs as soon as the
    connection is lost or cannot be made, before each reconnection attempt."""
    backoff = 0.1

    def up() -> None:
        nonlocal backoff
        backoff = 0.1
        on_up()

    while True:
        try:
            await _listen_once(driver_dsn(database_url), channel, on_message, up)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any loss: stop trusting, back off, reconnect
            on_down()
            log.warning("LISTEN %s: connection lost (%s); reconnecting in %.1fs", channel, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


async def _listen_once(
    dsn: str, channel: str, on_message: Callable[[str], None], on_up: Callable[[], None]
) -> None:
    """One connection's life: LISTEN, then a heartbeat until it is lost (raises)."""
    import asyncpg

    conn: Any = await asyncpg.connect(dsn, server_settings={"application_name": channel})
    try:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(channel, lambda _conn, _pid, _channel, payload: on_message(payload))
        on_up()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), HEARTBEAT_SECONDS)
            if not lost.is_set():
                await asyncio.wait_for(conn.execute("SELECT 1"), HEARTBEAT_SECONDS)
        raise ConnectionError("listener connection closed")
    finally:
        if not conn.is_closed():
            conn.terminate()
