"""The xAI API's writes on SQLite and PostgreSQL, on a live server: POST payment-method/default
(the card both APIs' top-ups charge) and POST prepaid/top-up (TopUpOrGetExistingPendingChange):
exact bodies, the sign of `amount`, lenient input, each error case, read vs write keys and
foreign teams, and that nothing is written or charged when a request fails."""

from __future__ import annotations

import concurrent.futures
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from creditgate.money import cents
from tests import support
from tests.cloudflare_support import add_card, billing, clocked_server, sandbox_charges
from tests.test_cloudflare_topup import _Unreachable
from tests.xai_support import Team, new_team, status_body

DECLINES = "4000000000000341"  # saved fine, every charge declined
THREE_D_SECURE = "4000002500003155"


def _methods(server: support.LiveServer, team: Team) -> list[str]:
    with server.client(team.read) as c:
        r = c.get(team.path("payment-method"))
    assert r.status_code == 200, r.text
    return [m["paymentMethodId"] for m in r.json()["paymentMethods"]]  # the default first


def _team_with_cards(server: support.LiveServer, *cards: str) -> tuple[Team, list[str]]:
    team = new_team(server)
    return team, [add_card(server, team.id, card)["payment_method_id"] for card in cards]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def test_set_default_payment_method(server: support.LiveServer) -> None:
    team, (visa, mastercard) = _team_with_cards(server, "4242424242424242", "5555555555554444")
    other, (foreign,) = _team_with_cards(server, "4242424242424242")
    assert _methods(server, team) == [mastercard, visa]  # the last card saved is the default
    path = team.path("payment-method/default")
    before = support.snapshot(server.settings.database_url)
    with server.client(team.write) as c:
        message = status_body(c.post(path, json={"paymentMethodId": "pm_sbx_nope"}), 404, 5)
        assert message == "no saved payment method 'pm_sbx_nope' on this account"
        assert status_body(c.post(path, json={"paymentMethodId": foreign}), 404, 5)  # another team's card
        bad = [{}, {"paymentMethodId": ""}, {"paymentMethodId": 5}, {"paymentMethodId": "x" * 101},
               {"paymentMethodId": visa, "payment_method_id": visa}, []]  # fmt: skip
        for body in bad:
            assert status_body(c.post(path, json=body), 400, 3), body
        assert status_body(c.post(path, content=b"{", headers={"content-type": "application/json"}), 400, 3)
        assert status_body(
            c.post(other.path("payment-method/default"), json={"paymentMethodId": foreign}), 404, 5
        )
        assert status_body(c.post("/v1/billing/teams/default/payment-method/default", json={}), 400, 3)
    with server.client(team.read) as c:
        assert status_body(c.post(path, json={"paymentMethodId": visa}), 403, 7)
    with server.client(None) as c:
        assert status_body(c.post(path, json={"paymentMethodId": visa}), 401, 16)
    assert _methods(server, team) == [mastercard, visa]  # nothing changed
    assert _methods(server, other) == [foreign]
    assert support.snapshot(server.settings.database_url) == before

    with server.client(team.write) as c:
        r = c.post(path, json={"payment_method_id": visa, "futureField": {"a": 1}})  # snake_case, unknown
        assert (r.status_code, r.text) == (200, "{}")
        assert c.post(path, json={"paymentMethodId": visa}).text == "{}"  # again: no change
    assert _methods(server, team) == [visa, mastercard]
    cloudflare = billing(server, team.write)
    assert cloudflare.credit_balance(account_id=team.id).payment_method.last4 == "4242"
    made = cloudflare.topup.create(account_id=team.id, amount=1000)  # Cloudflare charges it
    assert (made.brand, made.last4) == ("visa", "4242")
    with server.admin() as c:  # the operator may set any team's default
        assert c.post(path, json={"paymentMethodId": mastercard}).status_code == 200
    assert _methods(server, team) == [mastercard, visa]


def _top_up(c: httpx.Client, team: Team, amount: Any, **headers: str) -> httpx.Response:
    return c.post(team.path("prepaid/top-up"), json={"amount": amount}, headers=headers)


def _changes(server: support.LiveServer, team: Team) -> list[dict[str, Any]]:
    with server.client(team.read) as c:
        r = c.get(team.path("prepaid/balance"))
    assert r.status_code == 200, r.text
    return list(r.json()["changes"])


def test_top_up_charges_the_default_card_and_answers_the_purchase_change(server: support.LiveServer) -> None:
    team, _ = _team_with_cards(server, "4242424242424242")
    with server.client(team.write) as c:
        r = _top_up(c, team, {"val": "2500"})
        assert r.status_code == 200, r.text
        [listed] = _changes(server, team)  # the change the balance lists, key for key
        assert r.text == _compact({"change": listed})
        change = r.json()["change"]
        assert list(change) == ["teamId", "changeOrigin", "topupStatus", "amount", "invoiceId",
                                "invoiceNumber", "createTime", "createTs", "paymentProcessor"]  # fmt: skip
        assert (change["teamId"], change["changeOrigin"], change["topupStatus"]) == (
            team.id,
            "PURCHASE",
            "SUCCEEDED",
        )
        assert change["amount"] == {"val": "-2500"} and change["paymentProcessor"] == {"kind": "EXTERNAL"}
        # the sign is disregarded; int64 as a number; unknown fields are ignored
        for amount in ({"val": -1500}, {"val": 1500, "currency": "usd"}, {"val": "-1000"}):
            r = _top_up(c, team, amount)
            assert r.status_code == 200 and r.json()["change"]["amount"] == {
                "val": f"-{abs(int(amount['val']))}"
            }
        assert (
            c.post(team.path("prepaid/top-up"), json={"amount": {"val": 1000}, "teamId": "x"}).status_code
            == 200
        )
    assert support.balance_units(server, team.id) == cents(2500 + 1500 + 1500 + 1000 + 1000)
    assert sandbox_charges(server.settings.database_url, team.id) == 5
    with server.client(team.read) as c:
        total = c.get(team.path("prepaid/balance")).json()["total"]
    assert total == {"val": "-7500"}


def test_top_up_errors_write_nothing(server: support.LiveServer) -> None:
    team, _ = _team_with_cards(server, "4242424242424242")
    bare = new_team(server)  # no card
    other = new_team(server)
    url = server.settings.database_url
    before = support.snapshot(url)
    with server.client(team.write) as c:
        for amount in (None, {}, {"val": "abc"}, {"val": 0}, {"val": 999}, {"val": "-999"}, {"val": 1.5},
                       {"val": "9223372036854775808"}, {"val": 100_000_001}, "1000"):  # fmt: skip
            assert status_body(_top_up(c, team, amount), 400, 3), amount
        assert "amount.val" in status_body(_top_up(c, team, {"val": 5}), 400, 3)
        assert status_body(c.post(team.path("prepaid/top-up"), json={}), 400, 3) == "amount is required"
        assert status_body(_top_up(c, other, {"val": 1000}), 404, 5)
        assert status_body(
            c.post("/v1/billing/teams/default/prepaid/top-up", json={"amount": {"val": 1000}}), 400, 3
        )
        assert status_body(_top_up(c, team, {"val": 1000}, **{"Idempotency-Key": "k" * 256}), 400, 3)
    with server.client(team.read) as c:
        assert status_body(_top_up(c, team, {"val": 1000}), 403, 7)
    with server.client(None) as c:
        assert status_body(_top_up(c, team, {"val": 1000}), 401, 16)
    with server.client(bare.write) as c:
        assert "no default payment method" in status_body(_top_up(c, bare, {"val": 1000}), 400, 9)
    assert support.snapshot(url) == before
    assert sandbox_charges(url, team.id) == 0


def test_a_declined_top_up_is_402_and_credits_nothing(server: support.LiveServer) -> None:
    team, _ = _team_with_cards(server, DECLINES)
    with server.client(team.write) as c:
        message = status_body(_top_up(c, team, {"val": 1000}), 402, 9)
        assert "card_declined" in message and "Nothing was credited" in message
        assert status_body(_top_up(c, team, {"val": 1000}), 402, 9)  # not pending: a new attempt
    assert support.balance_units(server, team.id) == 0
    assert sandbox_charges(server.settings.database_url, team.id) == 2
    changes = _changes(server, team)
    assert [(ch["topupStatus"], ch["amount"]) for ch in changes] == [
        ("FAILED_TO_CHARGE", {"val": "-1000"})
    ] * 2
    with server.client(team.read) as c:
        assert c.get(team.path("prepaid/balance")).json()["total"] == {"val": "0"}


def test_a_pending_top_up_is_returned_instead_of_charging_again(server: support.LiveServer) -> None:
    team, _ = _team_with_cards(server, THREE_D_SECURE)
    url = server.settings.database_url
    with server.client(team.write) as c:
        first = _top_up(c, team, {"val": 3000})
        assert first.status_code == 200, first.text
        pending = first.json()["change"]
        assert (pending["topupStatus"], pending["amount"]) == ("TO_CHARGE", {"val": "-3000"})
        again = _top_up(c, team, {"val": 5000})  # another amount: still the pending one
        assert again.text == first.text
        assert sandbox_charges(url, team.id) == 1 and support.balance_units(server, team.id) == 0
        [(secret,)] = support.query(url, "SELECT client_secret FROM topups WHERE account_id = :a", a=team.id)
        r = httpx.post(f"{server.base_url}/sandbox/v1/authenticate", json={"client_secret": secret})
        assert r.json()["status"] == "succeeded"
        settled = _top_up(c, team, {"val": 5000})  # re-reads the pending one: paid now
        assert settled.status_code == 200, settled.text
        done = settled.json()["change"]
        assert (done["invoiceId"], done["topupStatus"], done["amount"]) == (
            pending["invoiceId"], "SUCCEEDED", {"val": "-3000"}
        )  # fmt: skip
        fresh = _top_up(c, team, {"val": 2000})  # nothing pending: a new purchase (3-D Secure again)
        assert fresh.json()["change"]["invoiceId"] != pending["invoiceId"]
    assert support.balance_units(server, team.id) == cents(3000)
    assert sandbox_charges(url, team.id) == 2


def test_idempotency_key_replays_one_top_up(server: support.LiveServer) -> None:
    team, _ = _team_with_cards(server, "4242424242424242")
    with server.client(team.write) as c:
        first = _top_up(c, team, {"val": 1200}, **{"Idempotency-Key": "xai-1"})
        again = _top_up(c, team, {"val": "-1200"}, **{"Idempotency-Key": "xai-1"})
        assert first.status_code == 200 and again.text == first.text
        assert status_body(_top_up(c, team, {"val": 1300}, **{"Idempotency-Key": "xai-1"}), 409, 10)
        assert (
            _top_up(c, team, {"val": 1200}).json()["change"]["invoiceId"]
            != first.json()["change"]["invoiceId"]
        )
    assert sandbox_charges(server.settings.database_url, team.id) == 2
    assert support.balance_units(server, team.id) == cents(2400)


def test_processor_outage_is_503_and_the_next_call_resumes_the_same_top_up(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from creditgate.api import app as app_module
    from creditgate.payments.factory import make_processor

    monkeypatch.setattr(app_module, "make_processor", lambda *a: _Unreachable(make_processor(*a)))
    with clocked_server(database_url, tmp_path) as (server, _clock):
        team = Team(str(uuid.uuid4()), "", "")
        support.create_account(server, team.id)
        add_card(server, team.id)
        team = Team(team.id, "", support.create_token(server, team.id, "write"))
        with server.client(team.write) as c:
            assert "not settled" in status_body(_top_up(c, team, {"val": 4000}), 503, 14)
            assert support.balance_units(server, team.id) == 0 and sandbox_charges(database_url, team.id) == 0
            resumed = _top_up(c, team, {"val": 1000})  # the pending 4000 is charged, not a new 1000
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["change"]["amount"] == {"val": "-4000"}
        assert support.balance_units(server, team.id) == cents(4000)
        assert sandbox_charges(database_url, team.id) == 1


def test_concurrent_top_ups_while_one_is_pending_charge_once(server: support.LiveServer) -> None:
    team, _ = _team_with_cards(server, THREE_D_SECURE)  # the first top-up stays pending

    def one(i: int) -> httpx.Response:
        with server.client(team.write) as c:
            return _top_up(c, team, {"val": 1000 + i})

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(6)))
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    assert len({r.text for r in answers}) == 1  # every call got the one pending change
    assert sandbox_charges(server.settings.database_url, team.id) == 1
    assert (
        len(
            support.query(
                server.settings.database_url, "SELECT id FROM topups WHERE account_id = :a", a=team.id
            )
        )
        == 1
    )
