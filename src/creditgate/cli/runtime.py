"""Helpers every command shares: settings, a prepared database, JSON output, clean errors."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import typer

from creditgate.clock import system_clock
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.errors import CreditgateError
from creditgate.payments.factory import make_processor
from creditgate.workflows.context import Context
from creditgate.workflows.database import prepare_database

T = TypeVar("T")


def emit(data: Any) -> None:
    """Print JSON to stdout."""
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run(work: Callable[[Context], Awaitable[T]]) -> T:
    """Open the configured database (migrating it if needed), run `work` with the process's
    Context (its card processor included), and turn creditgate errors into a one-line
    message and a non-zero exit."""

    async def main() -> T:
        settings = Settings.from_env()
        db = Database(settings.database_url, pool_size=2)
        try:
            if settings.auto_migrate:
                await prepare_database(db)
            ctx = Context(settings=settings, db=db, processor=make_processor(settings, db, system_clock))
            try:
                return await work(ctx)
            finally:
                await close_processor(ctx)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except CreditgateError as exc:
        where = f" ({exc.field})" if exc.field else ""
        typer.echo(f"error: {exc.message}{where}", err=True)
        sys.exit(2 if exc.status < 500 else 1)


async def close_processor(ctx: Context) -> None:
    """Close the processor's connection pool, if it has one (Stripe)."""
    close = getattr(ctx.processor, "aclose", None)
    if close is not None:
        await close()
