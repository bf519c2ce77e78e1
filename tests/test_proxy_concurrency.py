"""Concurrent proxied calls from one account never overspend: with credit for exactly N worst
cases, N calls go through and every other one gets OpenAI's `insufficient_quota`. The fake
upstream holds every answer until N calls reached it, so all N holds are open at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest

from tests import proxy_support as ps
from tests import support

N, EXTRA = 6, 10


@pytest.fixture(scope="module")
def setup(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[support.LiveServer, ps.FakeUpstream]]:
    with ps.fake_upstream() as (fake, url):
        settings = support.make_settings(database_url, tmp_path_factory.mktemp("proxy-conc"))
        with ps.proxy_server(settings) as live:
            # input free, output $10 per million tokens: a 1,000-token worst case holds 1 cent
            model = {
                "model": "gpt-4o-mini",
                "alias": "conc-mini",
                "input_per_mtok_usd": "0",
                "output_per_mtok_usd": "10",
            }
            ps.add_upstream(
                live, provider="openai", base_url=url + "/v1", api_key=ps.UPSTREAM_KEY, models=[model]
            )
            yield live, fake


def test_n_concurrent_calls_fit_and_the_rest_get_insufficient_quota(
    setup: tuple[support.LiveServer, ps.FakeUpstream],
) -> None:
    live, fake = setup
    fake.reset(input_tokens=50, output_tokens=1000, barrier=N)
    account = support.create_account(live)
    support.grant(live, account, N)  # N cents: exactly N worst cases
    key = support.create_token(live, account, "api")

    async def main() -> list[object]:
        client = openai.AsyncOpenAI(base_url=live.base_url + "/openai/v1", api_key=key, max_retries=0)
        calls = [
            client.chat.completions.create(
                model="conc-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=1000
            )
            for _ in range(N + EXTRA)
        ]
        try:
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            await client.close()

    results = asyncio.run(main())
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    served = [r for r in results if not isinstance(r, BaseException)]
    assert len(served) == N and len(refused) == EXTRA, results
    assert all(r.code == "insufficient_quota" for r in refused)
    assert len(fake.requests) == N
    holds = ps.wait_closed(live, account)
    assert sorted(h[0] for h in holds) == ["settled"] * N
    assert support.balance_units(live, account) == 0  # each settled at its worst case: 1 cent
