"""The proxy's routes cache: a change made through this process applies to the next call; one
made elsewhere is picked up by a background reload once the routes are CACHE_SECONDS old,
while calls keep being routed without waiting for it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from creditgate.db import Database
from creditgate.workflows import proxy_store as store
from creditgate.workflows import upstreams
from creditgate.workflows.context import Context
from tests import support


def _upstream(model: str) -> dict[str, Any]:
    return {
        "provider": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "sk-test",
        "models": [{"model": model, "input_per_mtok_usd": "1", "output_per_mtok_usd": "2"}],
    }


def test_routes_reload_in_the_background(fresh_database_url: str, tmp_path: Path) -> None:
    settings = support.make_settings(fresh_database_url, tmp_path)

    async def main() -> None:
        db = Database(settings.database_url, pool_size=4)
        ctx = Context(settings=settings, db=db)
        try:
            await upstreams.add_upstream(ctx, _upstream("here"))
            assert set(await upstreams.routes(ctx)) == {("openai", "here")}

            # another process adds an upstream: written to the store behind this one's back
            row, key, models = upstreams.parse_upstream(_upstream("elsewhere"))
            row = {**row, "id": "ups_elsewhere", "created_at": ctx.clock()}
            row["api_key_encrypted"] = store.encrypt(settings, key)
            async with db.write() as conn:
                await store.insert(conn, row, models)
            assert set(await upstreams.routes(ctx)) == {("openai", "here")}  # cached

            cached = upstreams._routes[settings.database_url]
            cached.loaded_at -= upstreams.CACHE_SECONDS + 1
            # old routes are served at once while one reload runs in the background
            assert set(await upstreams.routes(ctx)) == {("openai", "here")}
            reload = cached.refreshing
            assert reload is not None and not reload.done()
            await upstreams.routes(ctx)
            assert cached.refreshing is reload  # one reload at a time
            await reload
            assert set(await upstreams.routes(ctx)) == {("openai", "here"), ("openai", "elsewhere")}
            found = await upstreams.find_route(ctx, "openai", "elsewhere")
            assert found.api_key == "sk-test" and found.offered_since is not None

            # a change made here applies to the next call, and a reload that began before it
            # does not bring the removed upstream back
            cached.loaded_at -= upstreams.CACHE_SECONDS + 1
            await upstreams.routes(ctx)
            stale_reload = cached.refreshing
            await upstreams.remove_upstream(ctx, "ups_elsewhere")
            assert set(await upstreams.routes(ctx)) == {("openai", "here")}
            assert stale_reload is not None
            await stale_reload
            assert set(await upstreams.routes(ctx)) == {("openai", "here")}

            # routes too old (the reloads failing) are not served: the call waits for a load
            async with db.write() as conn:
                await store.insert(conn, {**row, "id": "ups_again"}, models)
            cached.loaded_at -= upstreams.STALE_SECONDS + 1
            assert ("openai", "elsewhere") in await upstreams.routes(ctx)
        finally:
            await db.dispose()

    asyncio.run(main())
