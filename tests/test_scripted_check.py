"""The issue's scripted check: an account and a gateway token made with the CLI, 10,000
events with 5% duplicates (some sent concurrently), and a balance equal to the exact sum of
the priced unique events."""

from __future__ import annotations

import concurrent.futures
import json
import random
from pathlib import Path
from typing import Any

import pytest

from creditgate.money import cents, parse_usd, to_usd_string, usage_cost
from tests import support

RATES = {  # the default catalog (2025-06-01): input, output, cached input per million tokens
    ("openai", "gpt-4o"): ("2.50", "10.00", "1.25"),
    ("openai", "gpt-4o-mini"): ("0.15", "0.60", "0.075"),
    ("anthropic", "claude-sonnet-4"): ("3.00", "15.00", "0.30"),
}


def _events(account: str, rnd: random.Random) -> tuple[list[dict[str, Any]], int]:
    unique: list[dict[str, Any]] = []
    total = 0
    for i in range(9_500):
        (provider, model), rates = rnd.choice(list(RATES.items()))
        inp = rnd.randint(0, 20_000)
        event: dict[str, Any] = {
            "id": f"req-{i}",
            "account_id": account,
            "model": model,
            "input_tokens": inp,
            "output_tokens": rnd.randint(0, 4_000),
            "cached_tokens": rnd.randint(0, inp),
            "metadata": {"key": f"k{i % 3}"},
        }
        if i % 2:
            event["provider"] = provider
        if i % 17 == 0:  # the gateway knows the cost itself
            event["cost_usd"] = to_usd_string(rnd.randint(1, 5 * 10**7))
            total += parse_usd(event["cost_usd"])
        else:
            total += usage_cost(
                event["input_tokens"],
                event["output_tokens"],
                event["cached_tokens"],
                *(parse_usd(r) for r in rates),
                0,
            )
        unique.append(event)
    duplicates = [dict(rnd.choice(unique)) for _ in range(500)]  # 5% of the 10,000 sent
    events = unique + duplicates
    rnd.shuffle(events)
    return events, total


@pytest.mark.slow
def test_scripted_check(fresh_database_url: str, tmp_path: Path) -> None:
    account = json.loads(
        support.cli(
            fresh_database_url,
            "accounts",
            "create",
            "9f3c2a1b4d5e6f708192a3b4c5d6e7f8",
            "--name",
            "scripted",
            data_dir=tmp_path,
        ).stdout
    )["id"]
    token = json.loads(
        support.cli(
            fresh_database_url, "tokens", "create", account, "--scope", "gateway", data_dir=tmp_path
        ).stdout
    )["token"]
    support.cli(fresh_database_url, "credits", "grant", account, "5000", data_dir=tmp_path)
    events, total = _events(account, random.Random(2))
    assert len(events) == 10_000
    batches = [events[i : i + 100] for i in range(0, len(events), 100)]
    # part of the traffic is replayed concurrently, as a retrying gateway would
    replays = batches[:10]
    settings = support.make_settings(fresh_database_url, tmp_path)
    with support.live_server(settings) as server:

        def send(batch: list[dict[str, Any]]) -> dict[str, int]:
            with server.client(token) as c:
                r = c.post("/v1/gateway/usage", json={"events": batch})
                assert r.status_code == 200, r.text
                return r.json()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, batches + replays))
        assert all(not r["rejected"] for r in results)
        assert sum(r["accepted"] for r in results) == 9_500
        assert sum(r["duplicates"] for r in results) == 500 + sum(len(b) for b in replays)
        assert support.balance_units(server, account) == cents(5000) - total
    shown = json.loads(support.cli(fresh_database_url, "accounts", "show", account, data_dir=tmp_path).stdout)
    assert parse_usd(shown["balance_usd"]) == cents(5000) - total
    report = json.loads(support.cli(fresh_database_url, "reconcile", data_dir=tmp_path).stdout)
    assert report["ok"] is True
