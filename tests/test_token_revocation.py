"""Token revocation reaches every process at once: on PostgreSQL through LISTEN/NOTIFY (two
`creditgate serve` processes, revoke through one, the other refuses at once), on SQLite by
in-process eviction; and the cache never keeps what a concurrent revocation evicted."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest

from creditgate.accounts.principal import Principal
from creditgate.accounts.revocation import CHANNEL, TokenCache
from creditgate.db import Database
from creditgate.db.notify import notify
from creditgate.errors import AuthenticationError
from tests import cluster_support, support

AUTHORIZE = "/v1/gateway/authorize"
ALICE = Principal(account_id="acct", scope="gateway", token_id="tok_a")


def _authorize(client: httpx.Client, account: str) -> int:
    body = {"account_id": account, "request_id": uuid.uuid4().hex, "model": "m", "estimated_cost_usd": "0.01"}
    r = client.post(AUTHORIZE, json=body)
    assert r.status_code in (200, 401), r.text
    return int(r.status_code)


def test_a_lookup_that_began_before_an_eviction_caches_nothing() -> None:
    cache = TokenCache(listened=False)
    generation = cache.begin()
    cache.evict_token("tok_a")  # the revocation commits while the lookup is in flight
    cache.put("digest", ALICE, generation)
    assert cache.get("digest") is None
    cache.put("digest", ALICE, cache.begin())
    assert cache.get("digest") == ALICE
    cache.evict_token("tok_other")
    assert cache.get("digest") == ALICE
    cache.evict_token("tok_a")
    assert cache.get("digest") is None


def test_concurrent_misses_share_one_lookup_and_its_error() -> None:
    async def main() -> None:
        cache = TokenCache(listened=False)
        calls: list[str] = []

        async def lookup() -> Principal:
            calls.append("read")
            await asyncio.sleep(0.01)
            return ALICE

        async def refused() -> Principal:
            calls.append("refused")
            await asyncio.sleep(0.01)
            raise AuthenticationError("invalid token")

        assert await asyncio.gather(*[cache.resolve("digest", lookup) for _ in range(20)]) == [ALICE] * 20
        assert calls == ["read"]
        assert await cache.resolve("digest", lookup) == ALICE  # cached
        outcomes = await asyncio.gather(
            *[cache.resolve("bad", refused) for _ in range(5)], return_exceptions=True
        )
        assert calls == ["read", "refused"] and all(isinstance(o, AuthenticationError) for o in outcomes)
        with pytest.raises(AuthenticationError):  # a refusal is not cached: asked again, looked up again
            await cache.resolve("bad", refused)
        assert calls == ["read", "refused", "refused"]

    asyncio.run(main())


def test_a_listened_cache_caches_only_while_its_listener_is_up() -> None:
    cache = TokenCache(listened=True)
    cache.put("digest", ALICE, cache.begin())
    assert cache.get("digest") is None  # not listening yet: a revocation could be missed
    cache.listener_up()
    cache.put("digest", ALICE, cache.begin())
    assert cache.get("digest") == ALICE
    generation = cache.begin()
    cache.listener_down()  # forgets everything and stops caching
    assert cache.get("digest") is None
    cache.listener_up()
    cache.put("digest", ALICE, generation)  # begun before the outage: not trusted
    assert cache.get("digest") is None


def test_the_listener_evicts_what_another_connection_notifies(database_url: str, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite evicts in-process")

    async def main() -> None:
        url = support.make_settings(database_url, Path(".")).database_url
        cache = TokenCache(listened=True)
        listener = asyncio.create_task(cache.listen(url))
        db = Database(url, pool_size=1)
        try:
            for _ in range(500):  # until LISTEN is in place
                if cache.listening:
                    break
                await asyncio.sleep(0.01)
            assert cache.listening
            cache.put("digest", ALICE, cache.begin())
            async with db.write() as conn:
                await notify(conn, CHANNEL, "tok_a")
                await asyncio.sleep(0.05)
                assert cache.get("digest") == ALICE  # not before the commit
            for _ in range(500):
                if cache.get("digest") is None:
                    break
                await asyncio.sleep(0.01)
            assert cache.get("digest") is None
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await db.dispose()

    asyncio.run(main())


@pytest.mark.postgres
def test_revoking_through_one_server_is_refused_by_the_other_at_once(tmp_path: Path) -> None:
    support.pg_or_skip()
    url = support.create_pg_database()
    try:
        with cluster_support.cluster(url, tmp_path, servers=2) as running:
            with running.client(0) as admin:
                account = support.new_account_id()
                assert admin.post("/admin/v1/accounts", json={"id": account}).status_code == 201
                r = admin.post(f"/admin/v1/accounts/{account}/grants", json={"amount_cents": 1000})
                assert r.status_code == 201, r.text
                issued = admin.post(f"/admin/v1/accounts/{account}/tokens", json={"scope": "gateway"}).json()
            with running.client(0, issued["token"]) as first, running.client(1, issued["token"]) as second:
                for _ in range(3):  # both processes have resolved (and cached) the token
                    assert _authorize(first, account) == 200
                    assert _authorize(second, account) == 200
                with running.client(0) as admin:
                    r = admin.delete(f"/admin/v1/accounts/{account}/tokens/{issued['id']}")
                    assert r.status_code == 200, r.text
                assert _authorize(first, account) == 401  # the revoking process: no wait at all
                # the other process: only the NOTIFY round trip (the old cache kept it 5 s)
                deadline = time.monotonic() + 2.0
                while _authorize(second, account) != 401:
                    assert time.monotonic() < deadline, "the other server still accepts a revoked token"
                assert _authorize(second, account) == 401
    finally:
        support.drop_pg_database(url)
