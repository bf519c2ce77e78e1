"""Authorize / settle / void over HTTP, on SQLite and PostgreSQL (shared live server)."""

from __future__ import annotations

from creditgate.money import cents, usage_cost
from tests import support
from tests.limits_support import account_state, authorize, set_limit, settle

GPT4O = usage_cost(1000, 500, 0, 2_500_000_000, 10_000_000_000, 1_250_000_000, 0)


def test_grant_hold_settle_and_replays(server: support.LiveServer) -> None:
    account = support.create_account(server)
    support.grant(server, account, 100)
    token = support.create_token(server, account, "gateway")
    with server.client(token) as c:
        first = authorize(c, account, "req-1", estimate="0.05")
        assert first["allowed"] is True and first["amount_cents"] == 5
        assert first["remaining"]["credit_cents"] == 95 and first["remaining"]["spending_limit_usd"] is None
        again = authorize(c, account, "req-1", estimate="0.07")
        assert again["hold_id"] == first["hold_id"] and again["replayed"] is True
        assert account_state(server, account)["held"] == cents(5)
        done = settle(c, first["hold_id"], cost="0.03")
        assert done["status"] == "settled" and done["captured_cents"] == 3 and done["released_usd"] == "0.02"
        assert done["overrun_cents"] == 0 and done["late"] is False and done["event_id"] == "req-1"
        replay = settle(c, first["hold_id"], cost="0.03")
        assert replay["replayed"] is True and replay["captured_cents"] == 3
        r = c.post(f"/v1/gateway/holds/{first['hold_id']}/settle", json={"id": "other", "cost_usd": "0.03"})
        assert r.status_code == 409, r.text
        assert c.post(f"/v1/gateway/holds/{first['hold_id']}/void").status_code == 409
        assert c.get(f"/v1/gateway/holds/{first['hold_id']}").json()["status"] == "settled"
    assert account_state(server, account) == {"balance": cents(97), "held": 0, "open": 0, "overruns": 0}


def test_worst_case_is_priced_from_the_catalog(server: support.LiveServer) -> None:
    account = support.create_account(server)
    support.grant(server, account, 100)
    with server.admin() as c:
        body = {
            "account_id": account,
            "request_id": "p",
            "model": "gpt-4o",
            "provider": "openai",
            "max_input_tokens": 1000,
            "max_output_tokens": 500,
        }
        r = c.post("/v1/gateway/authorize", json=body)
        assert r.status_code == 200 and r.json()["allowed"] is True
        assert account_state(server, account)["held"] == GPT4O
        # settle with tokens: the usage is priced like a usage event, the rest released
        done = c.post(
            f"/v1/gateway/holds/{r.json()['hold_id']}/settle",
            json={"input_tokens": 1000, "output_tokens": 100},
        ).json()
    cost = usage_cost(1000, 100, 0, 2_500_000_000, 10_000_000_000, 1_250_000_000, 0)
    assert done["captured_usd"] is not None
    assert account_state(server, account) == {
        "balance": cents(100) - cost,
        "held": 0,
        "open": 0,
        "overruns": 0,
    }


def test_insufficient_credit_is_denied_without_retry(server: support.LiveServer) -> None:
    account = support.create_account(server)
    support.grant(server, account, 2)
    with server.admin() as c:
        assert authorize(c, account, "a", estimate="0.03") == {
            "allowed": False,
            "reason": "insufficient_credit",
        }
        assert authorize(c, account, "b", estimate="0.02")["allowed"] is True
        assert authorize(c, account, "c", estimate="0")["allowed"] is False  # nothing left, even for free
    assert account_state(server, account)["held"] == cents(2)


def test_postpaid_allowance_counts(server: support.LiveServer) -> None:
    account = support.create_account(server, mode="postpaid", postpaid_limit_cents=10)
    with server.admin() as c:
        assert authorize(c, account, "a", estimate="0.10")["allowed"] is True
        assert authorize(c, account, "b", estimate="0.01")["reason"] == "insufficient_credit"


def test_void_releases_and_is_idempotent(server: support.LiveServer) -> None:
    account = support.create_account(server)
    support.grant(server, account, 10)
    with server.admin() as c:
        hold = authorize(c, account, "v", estimate="0.10")
        assert authorize(c, account, "w", estimate="0.01")["allowed"] is False
        for _ in range(2):
            r = c.post(f"/v1/gateway/holds/{hold['hold_id']}/void")
            assert r.status_code == 200 and r.json()["status"] == "voided"
        assert (
            c.post(f"/v1/gateway/holds/{hold['hold_id']}/settle", json={"cost_usd": "0.01"}).status_code
            == 409
        )
        assert authorize(c, account, "w", estimate="0.10")["allowed"] is True
    assert account_state(server, account) == {
        "balance": cents(10),
        "held": cents(10),
        "open": cents(10),
        "overruns": 0,
    }


def test_overrun_is_recorded_and_blocks_until_covered(server: support.LiveServer) -> None:
    account = support.create_account(server)
    support.grant(server, account, 2)
    with server.admin() as c:
        hold = authorize(c, account, "o", estimate="0.02")
        done = settle(c, hold["hold_id"], cost="0.05")
        assert done["overrun_cents"] == 3 and done["captured_cents"] == 5
        assert account_state(server, account) == {
            "balance": -cents(3),
            "held": 0,
            "open": 0,
            "overruns": cents(3),
        }
        assert authorize(c, account, "n1", estimate="0.01")["reason"] == "insufficient_credit"
        support.grant(server, account, 3)
        assert authorize(c, account, "n2", estimate="0")["reason"] == "insufficient_credit"
        support.grant(server, account, 1)
        assert authorize(c, account, "n3", estimate="0.01")["allowed"] is True


def test_usage_without_a_hold_counts_against_balance_and_window(server: support.LiveServer) -> None:
    account = support.create_account(server)
    support.grant(server, account, 100)
    set_limit(server, account, 10)
    with server.admin() as c:
        event = {
            "id": "u1",
            "account_id": account,
            "model": "gpt-4o",
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": "0.08",
        }
        assert c.post("/v1/gateway/usage", json={"events": [event]}).json()["accepted"] == 1
        denied = authorize(c, account, "a", estimate="0.03")
        assert denied["reason"] == "spending_limit" and denied["retry_after_ms"] > 0
        granted = authorize(c, account, "b", estimate="0.02")
        assert granted["allowed"] is True and granted["remaining"]["spending_limit_cents"] == 0
        assert granted["remaining"]["credit_cents"] == 90


def test_settle_reuses_an_event_already_reported(server: support.LiveServer) -> None:
    """A gateway that also reported the call as usage (same event id) is charged once."""
    account = support.create_account(server)
    support.grant(server, account, 100)
    with server.admin() as c:
        hold = authorize(c, account, "dup", estimate="0.05")
        event = {
            "id": "dup",
            "account_id": account,
            "model": "gpt-4o",
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": "0.04",
        }
        assert c.post("/v1/gateway/usage", json={"events": [event]}).json()["accepted"] == 1
        done = settle(c, hold["hold_id"], cost="0.04")
        assert done["captured_cents"] == 4
    assert account_state(server, account) == {"balance": cents(96), "held": 0, "open": 0, "overruns": 0}


def test_bad_input_is_a_clear_4xx(server: support.LiveServer) -> None:
    account = support.create_account(server)
    support.grant(server, account, 100)
    base = {"account_id": account, "request_id": "r", "model": "gpt-4o", "estimated_cost_usd": "0.01"}
    cases = [
        ({**base, "account_id": "bad id!"}, "account_id"),
        ({k: v for k, v in base.items() if k != "request_id"}, "request_id"),
        ({**base, "request_id": ""}, "request_id"),
        ({**base, "model": 5}, "model"),
        ({**base, "estimated_cost_usd": 0.01}, "estimated_cost_usd"),
        ({**base, "estimated_cost_usd": "-1"}, "estimated_cost_usd"),
        ({**base, "estimated_cost_usd": "abc"}, "estimated_cost_usd"),
        ({**base, "estimated_cost_usd": "1e400"}, "estimated_cost_usd"),
        ({**base, "estimated_cost_usd": "9000000000"}, "estimated_cost_usd"),
        ({**base, "estimated_cost_usd": "0.0000000001"}, "estimated_cost_usd"),
        (
            {**base, "estimated_cost_usd": None, "provider": "openai", "max_output_tokens": 10**12},
            "max_output_tokens",
        ),
        ({k: v for k, v in base.items() if k != "estimated_cost_usd"}, "estimated_cost_usd"),
        ({**base, "estimated_cost_usd": None, "max_output_tokens": -1}, "max_output_tokens"),
        ({**base, "estimated_cost_usd": None, "max_input_tokens": True}, "max_input_tokens"),
        ({**base, "estimated_cost_usd": None, "model": "no-such-model", "max_output_tokens": 5}, "model"),
        ({**base, "metadata": [1]}, "metadata"),
        ({**base, "surprise": 1}, "surprise"),
    ]
    with server.admin() as c:
        for body, field in cases:
            r = c.post("/v1/gateway/authorize", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["error"]["field"] == field, (body, r.text)
        for raw in (b"{", b"[]", b"", b"null"):
            r = c.post("/v1/gateway/authorize", content=raw, headers={"content-type": "application/json"})
            assert r.status_code == 400, r.text
        r = c.post("/v1/gateway/authorize", json={**base, "account_id": support.new_account_id()})
        assert r.status_code == 404
        hold = authorize(c, account, "ok")
        for body, field in (
            ({"input_tokens": "x"}, "input_tokens"),
            ({"cost_usd": 1}, "cost_usd"),
            ({"account_id": "other"}, "account_id"),
            ({"nope": 1}, "nope"),
        ):
            r = c.post(f"/v1/gateway/holds/{hold['hold_id']}/settle", json=body)
            assert r.status_code == 400 and r.json()["error"]["field"] == field, r.text
        assert c.post("/v1/gateway/holds/hold_nope/settle", json={"cost_usd": "0.01"}).status_code == 404
        assert c.post("/v1/gateway/holds/hold_nope/void").status_code == 404
        assert c.get(f"/v1/gateway/holds/{hold['hold_id']}").json()["status"] == "open"
    assert account_state(server, account) == {
        "balance": cents(100),
        "held": cents(1),
        "open": cents(1),
        "overruns": 0,
    }


def test_tokens_are_scoped(server: support.LiveServer) -> None:
    mine, theirs = support.create_account(server), support.create_account(server)
    support.grant(server, theirs, 10)
    with server.admin() as c:
        their_hold = authorize(c, theirs, "t")["hold_id"]
    gateway = support.create_token(server, mine, "gateway")
    read = support.create_token(server, mine, "read")
    body = {"account_id": theirs, "request_id": "x", "model": "m", "estimated_cost_usd": "0.01"}
    with server.client(gateway) as c:
        assert c.post("/v1/gateway/authorize", json=body).status_code == 403
        assert c.post(f"/v1/gateway/holds/{their_hold}/settle", json={"cost_usd": "0.01"}).status_code == 404
        assert c.post(f"/v1/gateway/holds/{their_hold}/void").status_code == 404
    with server.client(read) as c:
        assert c.post("/v1/gateway/authorize", json={**body, "account_id": mine}).status_code == 403
    assert account_state(server, theirs)["held"] == cents(1)


def test_authorize_served_in_front_of_routing_answers_like_every_other_route(
    server: support.LiveServer,
) -> None:
    """POST /v1/gateway/authorize skips FastAPI's routing (api/fast_routes.py); its errors,
    and every request it does not take, must look exactly as they do elsewhere."""
    body = {
        "account_id": support.new_account_id(),
        "request_id": "x",
        "model": "m",
        "estimated_cost_usd": "0.01",
    }
    with server.client(None) as c:
        fast = c.post("/v1/gateway/authorize", json=body)
        routed = c.post("/v1/gateway/usage", json={"events": []})
        assert fast.status_code == routed.status_code == 401
        assert fast.json() == routed.json(), (fast.text, routed.text)
        assert fast.headers["content-type"] == routed.headers["content-type"]
    with server.admin() as c:
        r = c.post("/v1/gateway/authorize", content=b"<x/>", headers={"content-type": "application/xml"})
        assert r.status_code == 415 and r.json()["error"]["type"], r.text
        r = c.post("/v1/gateway/authorize", content=b"{" + b" " * (3 << 20) + b"}")
        assert r.status_code == 413, r.text
        assert c.get("/v1/gateway/authorize").status_code == 405  # not POST: FastAPI's answer
        assert c.post("/v1/gateway/authorize%00", json=body).status_code == 400  # RejectNul still first
        assert c.post("/v1/gateway/authorize", json=body).status_code == 404  # unknown account
