"""Postpaid spending limits on SQLite and PostgreSQL, over a live server: the xAI routes
(`GET`/`POST postpaid/spending-limits`, exact protojson, lenient input, errors, keys, foreign
teams), the operator's hard limit (admin API and CLI), and authorize enforcing the effective
limit once prepaid credit is gone."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from creditgate.money import cents
from tests import support
from tests.limits_support import account_state, authorize, settle
from tests.xai_support import Team, ingest, new_team, status_body

LIMITS = "postpaid/spending-limits"


def _text(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _limits(hard: int, soft: int | None, effective: int) -> str:
    inner: dict[str, Any] = {"hardSlAuto": {"val": str(hard)}, "effectiveHardSl": {"val": str(hard)}}
    if soft is not None:
        inner["softSl"] = {"val": str(soft)}
    inner["effectiveSl"] = {"val": str(effective)}
    return _text({"spendingLimits": inner})


def _set_hard(server: support.LiveServer, team: str, hard_cents: int) -> dict[str, Any]:
    with server.admin() as c:
        r = c.put(f"/admin/v1/accounts/{team}/postpaid-limit", json={"hard_limit_cents": hard_cents})
        assert r.status_code == 200, r.text
        return dict(r.json())


def test_get_and_set_give_the_contract_bodies(server: support.LiveServer) -> None:
    team = new_team(server, mode="postpaid", postpaid_limit_cents=22500)
    with server.client(team.read) as c:  # never set: no softSl, the hard limit applies
        assert c.get(team.path(LIMITS)).text == _limits(22500, None, 22500)
    with server.client(team.write) as c:
        r = c.post(team.path(LIMITS), json={"desiredSoftSpendingLimit": {"val": "15000"}})
        assert r.status_code == 200 and r.text == '{"thisBpSoftSpendingLimit":{"val":"15000"}}'
        # the contract's example, key for key (a write key reads too)
        assert c.get(team.path(LIMITS)).text == (
            '{"spendingLimits":{"hardSlAuto":{"val":"22500"},"effectiveHardSl":{"val":"22500"},'
            '"softSl":{"val":"15000"},"effectiveSl":{"val":"15000"}}}'
        )


def test_input_is_read_leniently(server: support.LiveServer) -> None:
    team, other = new_team(server, mode="postpaid", postpaid_limit_cents=500), new_team(server)
    bodies: list[tuple[Any, int]] = [
        ({"desired_soft_spending_limit": {"val": 120}}, 120),  # snake_case, int64 as a number
        ({"desiredSoftSpendingLimit": {"val": " 130 "}, "unknown": [1]}, 130),  # unknown fields
        ({"teamId": other.id, "desiredSoftSpendingLimit": {"val": "140"}}, 140),  # the path's team wins
        ({"desiredSoftSpendingLimit": {"val": 150.0}}, 150),
        ({"desiredSoftSpendingLimit": {"val": "500"}}, 500),  # up to the hard limit
        ({"desiredSoftSpendingLimit": {}}, 0),  # an empty Cent is 0: prepaid only
    ]
    with server.client(team.write) as c:
        for body, applied in bodies:
            r = c.post(team.path(LIMITS), json=body)
            assert r.status_code == 200, r.text
            assert r.json() == {"thisBpSoftSpendingLimit": {"val": str(applied)}}
            assert c.get(team.path(LIMITS)).text == _limits(500, applied, applied)
    with server.client(other.read) as c:
        assert c.get(other.path(LIMITS)).text == _limits(0, None, 0)


def test_bad_input_is_a_400_and_changes_nothing(server: support.LiveServer) -> None:
    team = new_team(server, mode="postpaid", postpaid_limit_cents=1000)
    cases: list[tuple[Any, str]] = [
        ({}, "desiredSoftSpendingLimit is required"),
        ({"desiredSoftSpendingLimit": None}, "desiredSoftSpendingLimit is required"),
        ({"desiredSoftSpendingLimit": {"val": "-1"}}, "desiredSoftSpendingLimit.val: "),
        ({"desiredSoftSpendingLimit": {"val": "1001"}}, "at most the hard limit (USD 10.00)"),
        ({"desiredSoftSpendingLimit": {"val": str(2**63 - 1)}}, "at most the hard limit"),
        ({"desiredSoftSpendingLimit": {"val": str(2**63)}}, "desiredSoftSpendingLimit.val is out of range"),
        ({"desiredSoftSpendingLimit": {"val": "12.5"}}, "desiredSoftSpendingLimit.val must be an integer"),
        ({"desiredSoftSpendingLimit": {"val": True}}, "desiredSoftSpendingLimit.val must be an integer"),
        ({"desiredSoftSpendingLimit": "100"}, "desiredSoftSpendingLimit must be a JSON object"),
        ([1], "body must be a JSON object"),
        (
            {"desiredSoftSpendingLimit": {"val": 1}, "desired_soft_spending_limit": {"val": 2}},
            "is given twice",
        ),
    ]
    with server.client(team.write) as c:
        assert c.post(team.path(LIMITS), json={"desiredSoftSpendingLimit": {"val": "700"}}).status_code == 200
        before = support.snapshot(server.settings.database_url)
        for body, message in cases:
            assert message in status_body(c.post(team.path(LIMITS), json=body), 400, 3), body
        assert status_body(c.post(team.path(LIMITS), content=b"{"), 400, 3)
        assert c.get(team.path(LIMITS)).text == _limits(1000, 700, 700)
    assert support.snapshot(server.settings.database_url) == before


def test_keys_and_teams(server: support.LiveServer) -> None:
    team, other = new_team(server, mode="postpaid", postpaid_limit_cents=100), new_team(server)
    missing = Team(str(uuid.uuid4()), "", "")
    body = {"desiredSoftSpendingLimit": {"val": "50"}}
    with server.client(team.read) as c:
        assert c.get(team.path(LIMITS)).status_code == 200
        assert "scope (read)" in status_body(c.post(team.path(LIMITS), json=body), 403, 7)
        for foreign in (other, missing):  # a foreign team answers as a missing one
            assert status_body(c.get(foreign.path(LIMITS)), 404, 5) == f"team {foreign.id} not found"
        assert status_body(c.get(f"/v1/billing/teams/default/{LIMITS}"), 400, 3) == "Invalid uuid"
    with server.client(team.write) as c:
        assert status_body(c.post(other.path(LIMITS), json=body), 404, 5) == f"team {other.id} not found"
    with server.client(None) as c:
        assert status_body(c.get(team.path(LIMITS)), 401, 16)
        assert status_body(c.post(team.path(LIMITS), json=body), 401, 16)
    gateway = support.create_token(server, team.id, "gateway")
    with server.client(gateway) as c:
        assert status_body(c.get(team.path(LIMITS)), 403, 7)
    with server.admin() as c:  # the operator may act on any team; a missing one is still 404
        assert c.post(other.path(LIMITS), json={"desiredSoftSpendingLimit": {"val": "0"}}).status_code == 200
        assert status_body(c.get(missing.path(LIMITS)), 404, 5) == f"team {missing.id} not found"
        assert status_body(c.post(missing.path(LIMITS), json=body), 404, 5)
    with server.client(team.read) as c:
        assert c.get(team.path(LIMITS)).text == _limits(100, None, 100)  # nothing was written


def test_hard_limit_from_the_admin_api_caps_the_soft_one(server: support.LiveServer) -> None:
    team = new_team(server, mode="postpaid", postpaid_limit_cents=1000)
    with server.client(team.write) as c:
        assert c.post(team.path(LIMITS), json={"desiredSoftSpendingLimit": {"val": "800"}}).status_code == 200
    assert _set_hard(server, team.id, 300) == {
        "account_id": team.id,
        "hard_limit_usd": "3.00",
        "soft_limit_usd": "8.00",
        "effective_limit_usd": "3.00",
        "hard_limit_cents": 300,
        "soft_limit_cents": 800,
        "effective_limit_cents": 300,
    }
    with server.client(team.read) as c:  # lowering the hard limit below the soft one lowers the effective one
        assert c.get(team.path(LIMITS)).text == _limits(300, 800, 300)
    with server.admin() as c:
        account = c.get(f"/admin/v1/accounts/{team.id}").json()
        assert (account["postpaid_hard_limit_usd"], account["postpaid_soft_limit_usd"]) == ("3.00", "8.00")
        assert account["postpaid_effective_limit_usd"] == "3.00"
        assert c.get(f"/admin/v1/accounts/{team.id}/postpaid-limit").json()["effective_limit_cents"] == 300
    _set_hard(server, team.id, 2000)  # raised again: the customer's own limit applies
    with server.client(team.read) as c:
        assert c.get(team.path(LIMITS)).text == _limits(2000, 800, 800)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "hard_limit_cents"),
        ({"hard_limit_cents": -1}, "hard_limit_cents"),
        ({"hard_limit_cents": "5"}, "hard_limit_cents"),
        ({"hard_limit_cents": 10**20}, "hard_limit_cents"),
        ({"hard_limit_cents": 5, "soft": 1}, "soft"),
    ],
)
def test_admin_hard_limit_bad_input(server: support.LiveServer, body: dict[str, Any], field: str) -> None:
    account = support.create_account(server, mode="postpaid", postpaid_limit_cents=5)
    with server.admin() as c:
        r = c.put(f"/admin/v1/accounts/{account}/postpaid-limit", json=body)
        assert r.status_code == 400 and field in r.text, r.text
        assert c.get(f"/admin/v1/accounts/{account}/postpaid-limit").json()["hard_limit_cents"] == 5


def test_a_prepaid_account_stays_prepaid_only(server: support.LiveServer) -> None:
    team = new_team(server)
    with server.admin() as c:
        r = c.put(f"/admin/v1/accounts/{team.id}/postpaid-limit", json={"hard_limit_cents": 100})
        assert r.status_code == 400 and "only a postpaid account" in r.text, r.text
        assert (
            c.put(f"/admin/v1/accounts/{team.id}/postpaid-limit", json={"hard_limit_cents": 0}).status_code
            == 200
        )
        r = c.post("/admin/v1/accounts", json={"id": support.new_account_id(), "postpaid_limit_cents": 1})
        assert r.status_code == 400 and "only a postpaid account" in r.text, r.text
        assert (
            c.put(
                f"/admin/v1/accounts/{support.new_account_id()}/postpaid-limit", json={"hard_limit_cents": 0}
            ).status_code
            == 404
        )
    with server.client(team.write) as c:
        assert c.post(team.path(LIMITS), json={"desiredSoftSpendingLimit": {"val": "0"}}).status_code == 200
        assert "at most the hard limit (USD 0.00)" in status_body(
            c.post(team.path(LIMITS), json={"desiredSoftSpendingLimit": {"val": "1"}}), 400, 3
        )
        assert c.get(team.path(LIMITS)).text == _limits(0, 0, 0)


def test_cli_shows_and_sets_the_hard_limit(server: support.LiveServer, tmp_path: Any) -> None:
    url = server.settings.database_url
    team = new_team(server, mode="postpaid")
    shown = json.loads(support.cli(url, "accounts", "postpaid-limit", team.id, data_dir=tmp_path).stdout)
    assert (shown["hard_limit_cents"], shown["soft_limit_cents"], shown["effective_limit_cents"]) == (
        0,
        None,
        0,
    )
    proc = support.cli(url, "accounts", "postpaid-limit", team.id, "--hard-cents", "2500", data_dir=tmp_path)
    assert json.loads(proc.stdout)["effective_limit_usd"] == "25.00"
    with server.client(team.read) as c:
        assert c.get(team.path(LIMITS)).text == _limits(2500, None, 2500)
    created = support.new_account_id()
    proc = support.cli(
        url,
        "accounts",
        "create",
        created,
        "--mode",
        "postpaid",
        "--postpaid-limit-cents",
        "700",
        data_dir=tmp_path,
    )
    assert json.loads(proc.stdout)["postpaid_hard_limit_usd"] == "7.00"
    failed = support.cli(
        url, "accounts", "postpaid-limit", team.id, "--hard-cents", "-5", data_dir=tmp_path, check=False
    )
    assert failed.returncode != 0
    with server.client(team.read) as c:
        assert c.get(team.path(LIMITS)).text == _limits(2500, None, 2500)


def test_authorize_uses_prepaid_first_then_stops_exactly_at_the_effective_limit(
    server: support.LiveServer,
) -> None:
    team = new_team(server, mode="postpaid", postpaid_limit_cents=1000)
    support.grant(server, team.id, 50)  # prepaid credit
    with server.client(team.write) as c:
        assert c.post(team.path(LIMITS), json={"desiredSoftSpendingLimit": {"val": "30"}}).status_code == 200
    with server.admin() as c:
        first = authorize(c, team.id, "a", estimate="0.50")  # all of the prepaid credit
        assert first["allowed"] is True
        settle(c, first["hold_id"], cost="0.50")
        assert account_state(server, team.id)["balance"] == 0
        on_account = authorize(c, team.id, "b", estimate="0.30")  # exactly the soft limit
        assert on_account["allowed"] is True
        assert authorize(c, team.id, "c", estimate="0.01") == {
            "allowed": False,
            "reason": "insufficient_credit",
        }
        settle(c, on_account["hold_id"], cost="0.30")
        assert authorize(c, team.id, "c", estimate="0") == {"allowed": False, "reason": "insufficient_credit"}
    assert account_state(server, team.id)["balance"] == -cents(30)
    with server.client(team.write) as c:  # more room: exactly one more cent
        assert c.post(team.path(LIMITS), json={"desiredSoftSpendingLimit": {"val": "31"}}).status_code == 200
    with server.admin() as c:
        assert authorize(c, team.id, "d", estimate="0.01")["allowed"] is True
        assert authorize(c, team.id, "e", estimate="0.01")["allowed"] is False
    _set_hard(server, team.id, 20)  # the operator lowers the ceiling under what is owed
    with server.client(team.write) as c:
        assert c.get(team.path(LIMITS)).text == _limits(20, 31, 20)
        assert c.post(team.path(LIMITS), json={"desiredSoftSpendingLimit": {"val": "0"}}).status_code == 200
    support.grant(server, team.id, 100)  # balance 70 cents, 1 held: prepaid only again
    with server.admin() as c:
        assert authorize(c, team.id, "f", estimate="0.70")["allowed"] is False
        assert authorize(c, team.id, "g", estimate="0.69")["allowed"] is True
    assert account_state(server, team.id)["held"] == cents(70)


def test_usage_without_a_hold_is_charged_and_the_limit_refuses_what_follows(
    server: support.LiveServer,
) -> None:
    """Ingest records usage that happened, past the limit too (as an overrun is); authorize,
    reading the same balance, refuses from then on."""
    team = new_team(server, mode="postpaid", postpaid_limit_cents=100)
    events = [
        {
            "id": f"u{i}",
            "model": "grok-3",
            "provider": "xai",
            "input_tokens": 1,
            "output_tokens": 1,
            "cost_usd": "0.60",
        }
        for i in range(2)
    ]
    ingest(server, team.id, events)
    assert account_state(server, team.id)["balance"] == -cents(120)
    with server.admin() as c:
        assert authorize(c, team.id, "after", estimate="0") == {
            "allowed": False,
            "reason": "insufficient_credit",
        }
    support.grant(server, team.id, 21)  # owed 99 cents: one cent of room under the limit
    with server.admin() as c:
        assert authorize(c, team.id, "room", estimate="0.02")["allowed"] is False
        assert authorize(c, team.id, "room", estimate="0.01")["allowed"] is True
