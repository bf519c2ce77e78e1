"""Usage ingestion over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures

from creditgate.money import UNITS_PER_CENT, usage_cost
from tests import support


def _event(account_id: str, event_id: str, **extra: object) -> dict[str, object]:
    return {
        "id": event_id,
        "account_id": account_id,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 1000,
        "output_tokens": 500,
        **extra,
    }


GPT4O = usage_cost(1000, 500, 0, 2_500_000_000, 10_000_000_000, 1_250_000_000, 0)


def test_batch_is_priced_stored_once_and_debited(server: support.LiveServer) -> None:
    account = support.create_account(server)
    support.grant(server, account, 1000)
    token = support.create_token(server, account, "gateway")
    batch = {
        "events": [
            _event(account, "a"),
            _event(account, "a"),
            _event(account, "b", cached_tokens=400),
            _event(account, "c", input_tokens=True),
            _event(account, "d", cost_usd="0.0123"),
        ]
    }
    with server.client(token) as c:
        r = c.post("/v1/gateway/usage", json=batch)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["accepted"] == 3 and body["duplicates"] == 1
        assert body["rejected"] == [
            {"index": 3, "error": "input_tokens must be an integer", "field": "input_tokens"}
        ]
        again = c.post("/v1/gateway/usage", json=batch).json()
        assert again["accepted"] == 0 and again["duplicates"] == 4
    cached = usage_cost(1000, 500, 400, 2_500_000_000, 10_000_000_000, 1_250_000_000, 0)
    expected = 1000 * UNITS_PER_CENT - GPT4O - cached - 12_300_000
    assert support.balance_units(server, account) == expected


def test_concurrent_replays_charge_once(server: support.LiveServer) -> None:
    account = support.create_account(server)
    token = support.create_token(server, account, "gateway")
    batch = {"events": [_event(account, f"e{i}") for i in range(50)]}

    def send() -> dict[str, int]:
        with server.client(token) as c:
            return c.post("/v1/gateway/usage", json=batch).json()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: send(), range(8)))
    assert sum(r["accepted"] for r in results) == 50
    assert sum(r["duplicates"] for r in results) == 50 * 7
    assert support.balance_units(server, account) == -50 * GPT4O


def test_token_cannot_reach_another_account(server: support.LiveServer) -> None:
    mine, theirs = support.create_account(server), support.create_account(server)
    token = support.create_token(server, mine, "gateway")
    with server.client(token) as c:
        r = c.post("/v1/gateway/usage", json={"events": [_event(mine, "x"), _event(theirs, "y")]})
    assert r.status_code == 403
    assert theirs not in r.text
    assert support.balance_units(server, mine) == 0


def test_read_token_cannot_report_usage(server: support.LiveServer) -> None:
    account = support.create_account(server)
    token = support.create_token(server, account, "read")
    with server.client(token) as c:
        assert c.post("/v1/gateway/usage", json={"events": [_event(account, "x")]}).status_code == 403
