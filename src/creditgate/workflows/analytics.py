"""Usage analytics for a team: one read transaction over the usage rollups."""

from __future__ import annotations

from creditgate.ledger import service as ledger
from creditgate.metering import analytics
from creditgate.metering.analytics import Query, Result
from creditgate.workflows.context import Context


async def analyze_usage(ctx: Context, team_id: str, query: Query) -> Result:
    """The query's time series over the team's usage (metering.analytics)."""
    analytics.check(query)  # a bad query is refused before any read
    async with ctx.db.read() as conn:
        await ledger.get_account(conn, team_id)
        await ctx.catalog.refresh(conn)
        return await analytics.analyze(conn, team_id, query, ctx.catalog)
