"""The price catalog: import rows (all or none) and list every effective price."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from creditgate.errors import ValidationError
from creditgate.metering import catalog
from creditgate.workflows.context import Context


@dataclass(frozen=True)
class Imported:
    inserted: int
    unchanged: int


def _quiet(message: str) -> None:
    del message


async def import_prices(ctx: Context, raw_rows: Any, *, progress: Callable[[str], None] = _quiet) -> Imported:
    """Check every row, then insert the new ones in one transaction (all rows or none)."""
    if not isinstance(raw_rows, list):
        raise ValidationError("prices must be a list", field="prices")
    now = ctx.clock()
    rows = catalog.parse_price_rows(raw_rows, now)
    progress(f"prices: {len(rows)} row(s) valid; importing them in one transaction")
    async with ctx.db.write() as conn:
        inserted, unchanged = await catalog.import_prices(conn, rows, now)
    progress(f"prices: done ({inserted} inserted, {unchanged} unchanged)")
    return Imported(inserted, unchanged)


async def list_prices(ctx: Context) -> list[dict[str, Any]]:
    """The whole catalog on the wire, every effective date included (refreshing the
    process's cached catalog on the way)."""
    async with ctx.db.read() as conn:
        await ctx.catalog.refresh(conn)
        return [catalog.price_to_wire(p) for p in await catalog.list_prices(conn)]


async def import_price_file(
    ctx: Context, text: str, filename: str, *, progress: Callable[[str], None] = _quiet
) -> Imported:
    """Import a JSON or CSV price file (all rows or none); an empty file is a 400."""
    raw = catalog.parse_price_file(text, filename)
    if not raw:
        raise ValidationError(f"{filename} holds no price rows", field="prices")
    progress(f"prices: read {len(raw)} row(s) from {filename}; checking them")
    return await import_prices(ctx, raw, progress=progress)
