"""Helpers every command shares: settings, a prepared database, JSON output, clean errors."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import orjson
import typer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError

from creditgate.clock import system_clock
from creditgate.config import ConfigError, Settings, mask_url
from creditgate.db import Database
from creditgate.errors import CreditgateError
from creditgate.payments.factory import make_processor
from creditgate.workflows.context import Context
from creditgate.workflows.database import prepare_database

T = TypeVar("T")


def emit(data: Any) -> None:
    """Print JSON to stdout."""
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def progress(message: str) -> None:
    """A progress line on stderr (stdout stays the command's JSON)."""
    typer.echo(message, err=True)


def load_settings() -> Settings:
    """Settings from the environment, or one line naming the bad variable and exit 2."""
    try:
        return Settings.from_env()
    except ValueError as exc:
        fail(str(exc), 2)


async def open_database(settings: Settings, pool_size: int = 2) -> Database:
    """Connect (and migrate, unless CREDITGATE_AUTO_MIGRATE=false); ConfigError in one line
    when the database cannot be reached."""
    db = Database(settings.database_url, pool_size=pool_size)
    try:
        if settings.auto_migrate:
            await prepare_database(db)
        else:
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
    except (OSError, DBAPIError, InterfaceError, TimeoutError) as exc:
        await db.dispose()
        reason = getattr(exc, "orig", None) or exc
        detail = " ".join(str(reason).split()) or type(reason).__name__
        raise ConfigError(
            f"CREDITGATE_DATABASE_URL: cannot use the database {mask_url(settings.database_url)}: {detail}"
        ) from None
    return db


def run(work: Callable[[Context], Awaitable[T]]) -> T:
    """Open the configured database (migrating it if needed), run `work` with the process's
    Context (its card processor included), and turn creditgate errors into a one-line
    message and a non-zero exit."""
    settings = load_settings()

    async def main() -> T:
        db = await open_database(settings)
        try:
            ctx = Context(settings=settings, db=db, processor=make_processor(settings, db, system_clock))
            try:
                return await work(ctx)
            finally:
                await close_processor(ctx)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except ConfigError as exc:
        fail(str(exc), 2)
    except CreditgateError as exc:
        where = f" ({exc.field})" if exc.field else ""
        typer.echo(f"error: {exc.message}{where}", err=True)
        sys.exit(2 if exc.status < 500 else 1)


async def close_processor(ctx: Context) -> None:
    """Close the processor's connection pool, if it has one (Stripe)."""
    close = getattr(ctx.processor, "aclose", None)
    if close is not None:
        await close()
