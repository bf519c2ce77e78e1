"""The auto top-up hook every debit path calls inside its own transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.api.state import Services
from creditgate.billing import autotopup


async def queue_auto_topups(
    svc: Services, conn: AsyncConnection, debited: Mapping[str, int], now: datetime
) -> None:
    """Queue one charge for each debited account now under its threshold (the `auto_topups`
    job makes the charge). Call it after every ingest that debits (usage reports, hold
    settlement), in the same transaction."""
    name = svc.processor.name if svc.processor is not None else None
    await autotopup.after_debit(conn, [a for a, units in debited.items() if units > 0], now, name)
