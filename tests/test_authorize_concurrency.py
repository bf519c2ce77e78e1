"""Zero overspend: many concurrent authorize calls from several processes against a server
with two uvicorn worker processes, on PostgreSQL and SQLite. Exactly K are granted, never K+1."""

from __future__ import annotations

import concurrent.futures
import warnings
from collections.abc import Iterator

import pytest

from creditgate.money import cents
from tests import cloudflare_support, support
from tests.limits_support import (
    account_state,
    authorize,
    authorize_from_processes,
    set_limit,
    settle,
    uvicorn_workers,
)
from tests.xai_support import new_team


@pytest.fixture(scope="module")
def workers(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.LiveServer]:
    with uvicorn_workers(database_url, tmp_path_factory.mktemp("workers"), workers=2) as live:
        yield live


def _bodies(account: str, prefix: str, n: int, estimate: str = "0.01") -> list[dict[str, object]]:
    return [
        {
            "account_id": account,
            "request_id": f"{prefix}-{i}",
            "model": "gpt-4o",
            "estimated_cost_usd": estimate,
        }
        for i in range(n)
    ]


def test_balance_for_exactly_k_grants_exactly_k(workers: support.LiveServer) -> None:
    account = support.create_account(workers)
    support.grant(workers, account, 37)
    answers = authorize_from_processes(workers, _bodies(account, "bal", 128))
    granted = [a for a in answers if a["allowed"]]
    assert len(granted) == 37
    assert {a["reason"] for a in answers if not a["allowed"]} == {"insufficient_credit"}
    assert len({a["hold_id"] for a in granted}) == 37
    assert account_state(workers, account) == {
        "balance": cents(37),
        "held": cents(37),
        "open": cents(37),
        "overruns": 0,
    }


def test_limit_for_exactly_k_grants_exactly_k(workers: support.LiveServer) -> None:
    account = support.create_account(workers)
    support.grant(workers, account, 10_000)
    set_limit(workers, account, 41, "daily", "sliding")
    answers = authorize_from_processes(workers, _bodies(account, "lim", 128))
    assert sum(a["allowed"] for a in answers) == 41
    assert {a["reason"] for a in answers if not a["allowed"]} == {"spending_limit"}
    assert account_state(workers, account)["held"] == cents(41)


def test_done_means_script(workers: support.LiveServer) -> None:
    """The issue's check, through the official Cloudflare SDK where it has a call: 150 cents of
    credit, a daily fixed limit of 100 cents, 300 concurrent 1-cent authorizes."""
    account = support.create_account(workers)
    support.grant(workers, account, 150)
    cf = cloudflare_support.billing(workers, support.create_token(workers, account, "write"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks spending-limit POST deprecated
        cf.spending_limit.create(account_id=account, amount=100, duration="daily", strategy="fixed")
    answers = authorize_from_processes(workers, _bodies(account, "dm", 300), processes=4, threads=24)
    granted = [a for a in answers if a["allowed"]]
    denied = [a for a in answers if not a["allowed"]]
    assert len(granted) == 100 and len(denied) == 200
    assert all(a["reason"] == "spending_limit" and a["retry_after_ms"] > 0 for a in denied)
    gateway = support.create_token(workers, account, "gateway")
    with workers.client(gateway) as c:
        replay = authorize(c, account, granted[0]["request_id"])
        assert replay["hold_id"] == granted[0]["hold_id"] and replay["replayed"] is True
        for a in granted:
            assert settle(c, a["hold_id"], cost="0.01")["captured_cents"] == 1
        assert cf.credit_balance(account_id=account).balance == 50
        after = authorize(c, account, "dm-next")
        assert after["allowed"] is False and after["reason"] == "spending_limit"
    assert account_state(workers, account) == {"balance": cents(50), "held": 0, "open": 0, "overruns": 0}


def test_one_request_id_sent_concurrently_gives_one_hold(workers: support.LiveServer) -> None:
    account = support.create_account(workers)
    support.grant(workers, account, 10)
    body = {"account_id": account, "request_id": "same", "model": "gpt-4o", "estimated_cost_usd": "0.01"}
    answers = authorize_from_processes(workers, [dict(body) for _ in range(64)])
    assert all(a["allowed"] and a["status"] == 200 for a in answers)
    assert len({a["hold_id"] for a in answers}) == 1
    assert sum(not a["replayed"] for a in answers) == 1
    assert account_state(workers, account)["held"] == cents(1)


def test_unknown_accounts_fail_alone_in_a_batch(workers: support.LiveServer) -> None:
    account = support.create_account(workers)
    support.grant(workers, account, 20)
    good = _bodies(account, "ok", 40)
    bad = _bodies(support.new_account_id(), "nope", 40)
    answers = authorize_from_processes(workers, [b for pair in zip(good, bad) for b in pair])
    assert sorted(a["status"] for a in answers) == [200] * 40 + [404] * 40
    assert sum(a.get("allowed", False) for a in answers) == 20
    assert account_state(workers, account)["held"] == cents(20)


def test_concurrent_settles_charge_each_hold_once(workers: support.LiveServer) -> None:
    """Settles arrive together (batched per worker): each hold is charged once, replays and a
    conflicting event id get their own answers, and the books stay exact."""
    account = support.create_account(workers)
    support.grant(workers, account, 100)
    with workers.admin() as c:
        holds = [authorize(c, account, f"s-{i}", estimate="0.02")["hold_id"] for i in range(40)]
    calls = [(h, {"cost_usd": "0.01"}) for h in holds] * 3 + [(holds[0], {"id": "other", "cost_usd": "0.01"})]

    def send(call: tuple[str, dict[str, str]]) -> tuple[int, dict[str, object]]:
        with workers.admin() as c:
            r = c.post(f"/v1/gateway/holds/{call[0]}/settle", json=call[1])
            return r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(send, calls))
    ok = [body for status, body in answers if status == 200]
    assert len(ok) == 120 and [s for s, _ in answers].count(409) == 1
    assert sum(not body["replayed"] for body in ok) == 40
    assert all(body["captured_cents"] == 1 for body in ok)
    assert account_state(workers, account) == {"balance": cents(60), "held": 0, "open": 0, "overruns": 0}


def test_postpaid_limit_for_exactly_k_grants_exactly_k(workers: support.LiveServer) -> None:
    """A postpaid team with 17 cents of prepaid credit and a soft limit of 20 cents (under a hard
    limit of 100): 128 concurrent 1-cent authorizes get exactly 37, never past the limit."""
    team = new_team(workers, mode="postpaid", postpaid_limit_cents=100)
    support.grant(workers, team.id, 17)
    with workers.client(team.write) as c:
        r = c.post(team.path("postpaid/spending-limits"), json={"desiredSoftSpendingLimit": {"val": "20"}})
        assert r.status_code == 200, r.text
    answers = authorize_from_processes(workers, _bodies(team.id, "pp", 128))
    assert sum(a["allowed"] for a in answers) == 37
    assert {a["reason"] for a in answers if not a["allowed"]} == {"insufficient_credit"}
    assert account_state(workers, team.id) == {
        "balance": cents(17),
        "held": cents(37),
        "open": cents(37),
        "overruns": 0,
    }
    with workers.admin() as c:  # spent on account down to exactly minus the limit, and no further
        for a in answers:
            if a["allowed"]:
                settle(c, a["hold_id"], cost="0.01")
        assert authorize(c, team.id, "pp-next", estimate="0")["allowed"] is False
    assert account_state(workers, team.id)["balance"] == -cents(20)
