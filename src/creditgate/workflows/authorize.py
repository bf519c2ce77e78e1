"""Authorize: price the worst case of a model call and place a hold for it, batched per process.

Concurrent authorizes are decided together by `limits.authorize_many` in one unit of work
(one autocommit statement on PostgreSQL); the database decides each under its account lock,
so batching never lets two requests spend the same credit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from creditgate.accounts.principal import Principal
from creditgate.limits import service as limits
from creditgate.metering import authorize as gate
from creditgate.workflows.batching import Batcher

if TYPE_CHECKING:
    from creditgate.workflows.context import Context

AuthorizeBatcher = Batcher[limits.HoldRequest, limits.Decision]

# Authorize (and settle) groups in flight at once per process on PostgreSQL. One: everything
# that arrives meanwhile joins the next group, so groups are larger and each request carries
# less of a group's fixed cost (a round trip, the commit's WAL flush, ~0.5 ms of PostgreSQL
# time per authorize group). bench/authorize.py on a quiet machine, medians of 3, 1 / 2 / 4 in
# flight: 2,349 / 1,986 / 1,873 authorize+settle pairs/s, PostgreSQL CPU per pair 295 / 403 /
# 435 us, authorize 7,066 / 6,526 / 6,623 req/s (docs/performance.md).
IN_FLIGHT = 1


def authorize_batcher(ctx: Context) -> AuthorizeBatcher:
    """The process's authorize batcher (built once, with the Context). SQLite has one writer,
    so there groups run one at a time."""
    in_flight = 1 if ctx.db.is_sqlite else IN_FLIGHT
    return Batcher(ctx.db.single, limits.authorize_many, name="authorize", in_flight=in_flight)


async def authorize(ctx: Context, body: Any, caller: Principal) -> limits.Decision:
    """May this account spend about this much now? A Decision either way (allowed with its
    hold, or the reason it was denied); asking again with the same request_id replays."""
    now = ctx.clock()
    req = gate.prepare(body, caller)
    if req.estimate is None:
        async with ctx.db.read() as conn:
            await ctx.catalog.refresh(conn)
    hold = gate.hold_request(req, ctx.catalog, now, ttl_seconds=ctx.settings.hold_ttl_seconds)
    return await ctx.authorize_batcher.submit(hold)
